import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sameAttributeValue } from '../lib/job_settings.ts';
import { pipelineJobs } from './conformance/cases.ts';
import { ClassAd, parseExpr } from './standin/classad.ts';
import { parseSubmitDescription } from './standin/submit_description.ts';

/**
 * The pipeline's descriptions go to htcondor-api today (golang-htcondor's parser, checked in
 * conformance.test.ts against the real code) and to condor_submit on the access point later. Every
 * line must read the same in both: here each one is read as condor_submit reads it (the
 * stand-in's condor_submit reader, test/standin/submit_description.ts) and must give the same
 * checked attributes, and a job that cannot start before it is configured.
 */

test('condor_submit reads every pipeline description as golang-htcondor does: the same checked attributes, and no start before configuration', () => {
  for (const { name, job } of pipelineJobs()) {
    const [attrs] = parseSubmitDescription(job.description, { clusterId: 4242, iwd: '/home/sco', owner: 'sco', env: {} }).procs;
    const ad = new ClassAd();
    for (const [attr, value] of attrs!) ad.set(attr, value.kind === 'literal' ? value.value : parseExpr(value.text));
    const json = ad.toJSON();
    for (const [attr, expected] of Object.entries(job.expected(4242))) {
      assert.ok(sameAttributeValue(expected, json[attr]), `${name}: condor_submit gives ${attr} = ${JSON.stringify(json[attr])}`);
    }
    assert.deepEqual(ad.evaluate('Requirements'), { type: 'boolean', value: false }, `${name}: Requirements`);
  }
});
