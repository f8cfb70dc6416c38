// Command conformance turns submit descriptions into job ads with golang-htcondor's own code,
// the code htcondor-api runs for POST /api/v1/jobs (Schedd.SubmitRemote): ParseSubmitFile,
// SubmitFile.Submit, then configureRemoteJobAd on every proc ad. Only the schedd round trip is
// left out. Input on stdin: [{"name": "...", "description": "..."}]; output on stdout: the same
// cases with "ads" (attribute name -> ClassAd expression as golang-htcondor unparses it) or
// "error" (the message a parse failure gives).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	_ "unsafe" // for go:linkname

	"github.com/PelicanPlatform/classad/classad"
	htcondor "github.com/bbockelm/golang-htcondor"
)

// configureRemoteJobAd is unexported; SubmitRemote calls it on every proc ad before sending it.
//
//go:linkname configureRemoteJobAd github.com/bbockelm/golang-htcondor.configureRemoteJobAd
func configureRemoteJobAd(procAd *classad.ClassAd) bool

// Fixed inputs, so that the vectors are reproducible: the cluster id the schedd would hand
// out and the server's working directory (the Iwd of a job without initialdir).
const (
	clusterID = 4242
	serverCwd = "/"
)

type testCase struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

type jobAd struct {
	// Attributes maps each attribute to its ClassAd expression, as golang-htcondor unparses it.
	Attributes map[string]string `json:"attributes"`
	// NeedsSpooling is configureRemoteJobAd's answer: whether the job waits for PUT .../input.
	NeedsSpooling bool `json:"needs_spooling"`
}

type result struct {
	testCase
	Ads   []jobAd `json:"ads,omitempty"`
	Error string  `json:"error,omitempty"`
}

// Attributes whose values come from the clock or the build, not from the description.
var volatile = map[string]bool{"QDate": true}

func submitRemote(description string) ([]jobAd, error) {
	sf, err := htcondor.ParseSubmitFile(strings.NewReader(description))
	if err != nil {
		return nil, fmt.Errorf("failed to parse submit file: %w", err)
	}
	submitted, err := sf.Submit(clusterID)
	if err != nil {
		return nil, fmt.Errorf("failed to generate job ads: %w", err)
	}
	ads := make([]jobAd, 0, len(submitted.ProcAds))
	for proc, ad := range submitted.ProcAds {
		needsSpooling := configureRemoteJobAd(ad)
		// SubmitRemote sets these from the schedd's answer (NewCluster, NewProc).
		_ = ad.Set("ClusterId", int64(clusterID))
		_ = ad.Set("ProcId", int64(proc))
		attrs := map[string]string{}
		names := ad.GetAttributes()
		sort.Strings(names)
		for _, name := range names {
			if volatile[name] {
				continue
			}
			expr, ok := ad.Lookup(name)
			if !ok || expr == nil {
				continue
			}
			attrs[name] = expr.String()
		}
		ads = append(ads, jobAd{Attributes: attrs, NeedsSpooling: needsSpooling})
	}
	return ads, nil
}

func main() {
	var cases []testCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		fmt.Fprintln(os.Stderr, "conformance: reading cases:", err)
		os.Exit(2)
	}
	if err := os.Chdir(serverCwd); err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(2)
	}
	results := make([]result, 0, len(cases))
	for _, c := range cases {
		ads, err := submitRemote(c.Description)
		r := result{testCase: c, Ads: ads}
		if err != nil {
			r.Error = err.Error()
		}
		results = append(results, r)
	}
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", "  ")
	out.SetEscapeHTML(false)
	if err := out.Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(2)
	}
}
