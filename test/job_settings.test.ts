import assert from 'node:assert/strict';
import { test } from 'node:test';
import { argumentsV2, environmentV2, sameAttributeValue } from '../lib/job_settings.ts';
import { jobEnvironment } from '../lib/invocation.ts';

test('environment values are written in the V2 raw form the starter reads', () => {
  assert.equal(environmentV2({ A: '1', B: 'x y', C: "it's", D: '' }), `A=1 B='x y' C='it''s' D=''`);
  assert.throws(() => environmentV2({ 'A-B': '1' }), /not an environment variable name/);
  assert.throws(() => environmentV2({ A: 'x\ny' }), /spans lines/);
});

test('V2 arguments split as the starter splits them', () => {
  assert.deepEqual(argumentsV2(`a b' 'c it''''s "q"`), ['a', 'b c', "it's", '"q"']);
  assert.deepEqual(argumentsV2(`  x   ''  'y z'`), ['x', '', 'y z']);
  assert.deepEqual(argumentsV2(''), []);
});

test('values read back from the server compare as ClassAd values, expressions modulo how the server prints them', () => {
  assert.ok(sameAttributeValue(false, false));
  assert.ok(!sameAttributeValue(false, 'false'), 'the string "false" is not the boolean');
  assert.ok(sameAttributeValue('a', 'a'));
  assert.ok(!sameAttributeValue(7, '7'));
  const expression = { expression: '(ExitSignal =?= 11 || (ExitCode =!= UNDEFINED && ExitCode >= 0 && ExitCode <= 2))' };
  assert.ok(sameAttributeValue(expression, '/Expr(((ExitSignal is 11) || (((ExitCode isnt undefined) && (ExitCode >= 0)) && (ExitCode <= 2))))/'));
  assert.ok(!sameAttributeValue(expression, '(ExitSignal =?= 11 || (ExitCode =!= UNDEFINED && ExitCode >= 0 && ExitCode <= 2))'), 'a string is not an expression');
  assert.ok(!sameAttributeValue(expression, '/Expr((ExitSignal is 11))/'));
  assert.ok(sameAttributeValue({ argv: ['a', 'b c'] }, "a 'b c'"));
  assert.ok(!sameAttributeValue({ argv: ['a', 'b c'] }, 'a b c'));
});

test('jobs get the settings of the launch environment, never anything else', () => {
  const env = jobEnvironment({
    PATH: '/usr/bin',
    HOME: '/home/sco',
    CONDOR_CONFIG: '/etc/condor/condor_config',
    AWS_REGION: 'us-east-2',
    AWS_CA_BUNDLE: '/etc/ssl/campus-ca.pem',
    AWS_SECRET_ACCESS_KEY: 'not-for-jobs',
    HTCONDOR_API_TOKEN_FILE: '/home/sco/.condor/tokens.d/ap',
    LANG: 'line1\nline2',
  });
  assert.deepEqual(env, {
    CONDOR_CONFIG: '/etc/condor/condor_config',
    PATH: '/usr/bin',
    HOME: '/home/sco',
    AWS_REGION: 'us-east-2',
    AWS_CA_BUNDLE: '/etc/ssl/campus-ca.pem',
  });
});
