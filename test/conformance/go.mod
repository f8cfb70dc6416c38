module cog-pipeline/test/conformance

go 1.25.7

// golang-htcondor at the version checked (tag v0.12.4, commit 2811bc1): its submit path is the
// one htcondor-api runs for POST /api/v1/jobs.
require (
	github.com/PelicanPlatform/classad v0.20.0
	github.com/bbockelm/golang-htcondor v0.12.4
)
