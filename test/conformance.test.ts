import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { sameAttributeValue } from '../lib/job_settings.ts';
import { conformanceCases, pipelineJobs } from './conformance/cases.ts';
import { GOLANG_HTCONDOR, runRealParser, VECTORS_FILE, type Vector } from './conformance/real_parser.ts';
import { ClassAd, parseExpr } from './standin/classad.ts';

/**
 * The conformance vectors (test/conformance/vectors.json) are golang-htcondor's own answers: what
 * htcondor-api makes of each submit description. Here: they are current, the real code still
 * gives them (when Go can build it), and the pipeline's descriptions give, on the real parser,
 * the ads the pipeline checks after submission. test/api_submit.test.ts checks that the
 * stand-in's emulation reproduces every vector.
 */

const vectors = JSON.parse(readFileSync(VECTORS_FILE, 'utf8')) as Vector[];
const CLUSTER = 4242; // the cluster id the conformance program gives every case

test('the committed vectors are for exactly the descriptions the pipeline renders today', () => {
  assert.deepEqual(
    vectors.map(({ name, description }) => ({ name, description })),
    conformanceCases(),
    'a template or a case changed: run `npm run conformance` and commit test/conformance/vectors.json',
  );
});

test(`golang-htcondor's own code (${GOLANG_HTCONDOR}) still gives the committed vectors`, (t) => {
  const run = runRealParser(conformanceCases());
  if (!run.ok) {
    t.diagnostic(`${run.why}: checked against the committed vectors only`);
    return;
  }
  assert.deepEqual(run.vectors, vectors);
});

/** A vector's job ad in the JSON form htcondor-api answers with (GET /api/v1/jobs/{id}). */
function asServerJson(attributes: Record<string, string>): Record<string, unknown> {
  const ad = new ClassAd();
  for (const [name, text] of Object.entries(attributes)) ad.set(name, parseExpr(text));
  return ad.toJSON();
}

test('on the real parser no pipeline job can start before it is configured', () => {
  const pipelineVectors = vectors.filter((v) => v.name.startsWith('pipeline '));
  assert.ok(pipelineVectors.length >= 10);
  for (const vector of pipelineVectors) {
    assert.equal(vector.error, undefined, vector.name);
    assert.equal(vector.ads?.length, 1, vector.name);
    const { attributes, needs_spooling } = vector.ads![0]!;
    // Nothing to upload: the server releases the job from its spooling hold itself.
    assert.equal(needs_spooling, false, vector.name);
    const ad = new ClassAd();
    for (const [name, text] of Object.entries(attributes)) ad.set(name, parseExpr(text as string));
    // The schedd's own ad is the target of local and scheduler universe jobs; whatever it holds, `false && ...` is false.
    assert.deepEqual(ad.evaluate('Requirements'), { type: 'boolean', value: false }, `${vector.name}: Requirements ${attributes.Requirements}`);
    assert.ok(!('OtherJobRemoveRequirements' in attributes) && !('OnExitRemove' in attributes) && !('Environment' in attributes), vector.name);
  }
});

test('on the real parser every pipeline description gives exactly what the pipeline checks after submission', () => {
  for (const { name, job } of pipelineJobs()) {
    const vector = vectors.find((v) => v.name === name)!;
    const json = asServerJson(vector.ads![0]!.attributes);
    for (const [attr, expected] of Object.entries(job.expected(CLUSTER))) {
      assert.ok(sameAttributeValue(expected, json[attr]), `${name}: ${attr} is ${JSON.stringify(json[attr])}`);
    }
  }
});

test('the lines the pipeline avoids give, on the real parser, what its checks would reject', () => {
  const stringFalse = asServerJson(vectors.find((v) => v.name === 'on_exit_remove = false is the string "false"')!.ads![0]!.attributes);
  assert.equal(stringFalse.OnExitRemove, 'false');
  assert.equal(sameAttributeValue(false, stringFalse.OnExitRemove), false);
  const macros = asServerJson(vectors.find((v) => v.name.startsWith('macros:'))!.ads![0]!.attributes);
  assert.match(String(macros.UserLog), /^\/l\/4242\.\.\.4242\./, '$(CLUSTER) and $(cluster) expand to nothing');
  const quoted = asServerJson(vectors.find((v) => v.name === 'environment in quotes keeps them')!.ads![0]!.attributes);
  assert.equal(quoted.Environment, `"A=1 B='x y'"`);
  const plus = asServerJson(vectors.find((v) => v.name.startsWith('+Attr never reaches the ad'))!.ads![0]!.attributes);
  assert.equal(plus.OtherJobRemoveRequirements, undefined, '+Attr lines never reach the ad');
});
