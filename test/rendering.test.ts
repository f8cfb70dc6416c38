import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { condorArguments, dagVarValue, dagWord } from '../lib/condor_syntax.ts';
import { dagPieces, layerName, nodeDiskKib, nodeFileNames, writeDag, type WorkflowDag } from '../lib/dag.ts';

/** The DAG file's text, whole, as writeDag writes it piece by piece. */
const renderDag = (dag: WorkflowDag) => [...dagPieces(dag)].join('');
import { baseName, dagBatchName, previewKey } from '../lib/naming.ts';
import { crondorJob, dagmanJob, releaseSpread, renderNodeSubmit } from '../lib/submit_rendering.ts';
import { renderTemplate } from '../lib/template.ts';
import { sampleSettings } from './support/sample_settings.ts';
import { lookupAttribute, parseSubmitDescription, splitArguments } from './standin/submit_description.ts';

const settings = sampleSettings({ maxRunning: 250 });
const invocation = { program: '/opt/node/bin/node', args: ['--import', 'file:///opt/cog/node_modules/tsx/dist/loader.mjs', '/opt/cog/cog_pipeline.ts'] };

/** `key = value` commands of a submit description, keys lower-cased. */
function commands(description: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of description.split('\n')) {
    const m = /^\s*([+A-Za-z_.]+)\s*=\s*(.*)$/.exec(line);
    if (m) out.set(m[1]!.toLowerCase(), m[2]!);
  }
  return out;
}

test('the crondor job carries SPEC 3.1 in lines both parsers read alike, absolute paths, and cannot start unconfigured', () => {
  const job = crondorJob(settings, invocation, '/home/sco/launch dir', { AWS_REGION: 'us-east-2' });
  const c = commands(job.description);
  assert.equal(c.get('universe'), 'local');
  assert.equal(c.get('executable'), '/opt/node/bin/node');
  assert.equal(c.get('transfer_executable'), 'false');
  // $(Cluster), not $(CLUSTER): golang-htcondor looks macros up with their exact case.
  assert.equal(c.get('log'), '/home/sco/launch dir/crondor_$(Cluster).log');
  assert.equal(c.get('output'), '/home/sco/launch dir/crondor_$(Cluster).out');
  assert.equal(c.get('error'), '/home/sco/launch dir/crondor_$(Cluster).err');
  assert.equal(c.get('cron_minute'), '*/15');
  for (const k of ['cron_hour', 'cron_day_of_month', 'cron_month', 'cron_day_of_week']) assert.equal(c.get(k), '*');
  assert.equal(c.get('request_cpus'), '1');
  assert.equal(c.get('request_memory'), '512');
  assert.equal(c.get('request_disk'), '524288');
  assert.equal(c.get('leave_in_queue'), 'false');
  assert.equal(c.get('requirements'), 'false');
  assert.equal(c.get('batch_name'), 'COG-Pipeline-Crondor-*raw.csv');
  // Read differently by the two parsers, so set after submission instead.
  for (const k of ['on_exit_remove', 'environment', 'getenv', 'should_transfer_files', 'when_to_transfer_output']) assert.equal(c.get(k), undefined, k);
  assert.equal(
    c.get('arguments'),
    '"--import file:///opt/cog/node_modules/tsx/dist/loader.mjs /opt/cog/cog_pipeline.ts crondor ' +
      '--input-bucket sco-in --output-bucket sco-out -p *raw.csv -s /home/sco/secret -a /home/sco/keyid ' +
      '-e web.s3.wisc.edu -m 250 --api-url https://ap.example.edu:8080 --api-token-file /home/sco/.condor/tokens.d/ap ' +
      "--dagman /usr/bin/condor_dagman --launch-dir '/home/sco/launch dir'\"",
  );
  assert.match(job.description, /^queue$/m);
  assert.deepEqual(job.settings(77), {
    OnExitRemove: false,
    Environment: 'AWS_REGION=us-east-2',
    UserLog: '/home/sco/launch dir/crondor_77.log',
  });
  const expected = job.expected(77);
  assert.equal(expected.Out, '/home/sco/launch dir/crondor_77.out');
  assert.equal(expected.JobUniverse, 12);
});

test('the node submit file carries SPEC 3.3, the later hold back-off and no secrets', () => {
  const c = commands(renderNodeSubmit(settings));
  assert.equal(c.get('universe'), 'container');
  assert.equal(c.get('container_image'), 'docker://osgeo/gdal:ubuntu-small-3.6.3');
  assert.match(c.get('executable')!, /^\/.*\/submit\/generate_cogs\.sh$/);
  assert.equal(c.get('arguments'), `"'$(INFILE)' $(BANDS)"`);
  assert.equal(c.get('log'), '$(LOGNAME).log');
  assert.equal(c.get('request_memory'), '1GB');
  assert.equal(c.get('request_disk'), '$(DISK_KIB)');
  assert.equal(c.get('aws_access_key_id_file'), '/home/sco/keyid');
  assert.equal(c.get('aws_secret_access_key_file'), '/home/sco/secret');
  assert.equal(c.get('transfer_input_files'), 's3://web.s3.wisc.edu/sco-in/$(FULL_INFILE)');
  assert.equal(
    c.get('transfer_output_remaps'),
    '"$(INFILE) = s3://web.s3.wisc.edu/sco-out/$(FULL_INFILE); $(OUTFILE) = s3://web.s3.wisc.edu/sco-out/$(FULL_OUTFILE)"',
  );
  assert.equal(
    c.get('periodic_release'),
    '((time() - EnteredCurrentStatus) >= ((((ClusterId % 25) * 60) + 60) * pow(2, NumHolds)))',
  );
  assert.equal(c.get('periodic_remove'), 'NumHolds > 5');
});

test('a full-URL endpoint becomes host:port in s3:// URLs', () => {
  const c = commands(renderNodeSubmit({ ...settings, s3: { ...settings.s3, endpoint: 'http://127.0.0.1:9000' } }));
  assert.equal(c.get('transfer_input_files'), 's3://127.0.0.1:9000/sco-in/$(FULL_INFILE)');
});

test('the hold back-off never takes a modulo by zero', () => {
  assert.equal(releaseSpread(10000), 1000);
  assert.equal(releaseSpread(25), 2);
  assert.equal(releaseSpread(9), 1);
  assert.equal(releaseSpread(1), 1);
});

test('the DAGMan job is what condor_submit_dag would submit, with the batch name and -MaxJobs', () => {
  const dagFile = '/home/sco/workflow-run-20261125-101500/dagfile.dag';
  const job = dagmanJob({
    dagman: '/usr/bin/condor_dagman',
    dagFile,
    batchName: 'COG-Pipeline-DAG-*raw.csv',
    maxJobs: 250,
    environment: { PATH: '/usr/bin:/bin', CONDOR_CONFIG: '/etc/condor/condor_config' },
  });
  const c = commands(job.description);
  assert.equal(c.get('universe'), 'scheduler');
  assert.equal(c.get('executable'), '/usr/bin/condor_dagman');
  assert.equal(c.get('batch_name'), 'COG-Pipeline-DAG-*raw.csv');
  assert.equal(c.get('log'), `${dagFile}.dagman.log`);
  assert.equal(c.get('output'), `${dagFile}.lib.out`);
  assert.equal(c.get('remove_kill_sig'), 'SIGUSR1');
  assert.equal(c.get('requirements'), 'false');
  for (const k of ['on_exit_remove', 'environment', 'getenv', '+otherjobremoverequirements', 'my.otherjobremoverequirements']) assert.equal(c.get(k), undefined, k);
  const args = c.get('arguments')!;
  assert.match(args, /-Dag \/home\/sco\/workflow-run-20261125-101500\/dagfile\.dag /);
  assert.match(args, /-MaxJobs 250 /);
  assert.match(args, /-UseDagDir"$/);
  assert.deepEqual(job.settings(88), {
    OnExitRemove: { expression: '(ExitSignal =?= 11 || (ExitCode =!= UNDEFINED && ExitCode >= 0 && ExitCode <= 2))' },
    Environment: `PATH=/usr/bin:/bin CONDOR_CONFIG=/etc/condor/condor_config _CONDOR_DAGMAN_LOG=${dagFile}.dagman.out _CONDOR_MAX_DAGMAN_LOG=0`,
    OtherJobRemoveRequirements: 'DAGManJobId =?= 88',
    UserLog: `${dagFile}.dagman.log`,
  });
});

test('the DAG has one retried node per image, per-node VARS and a NOOP FINAL node with the post script', () => {
  const dag = renderDag({
    timestamp: '20261125-101500',
    layerName: layerName(dagBatchName('*raw.csv')),
    images: [
      { key: 'Counties/WI/Wood/1band.tif', bands: 1, bytes: 1_100_000 },
      { key: 'Counties/WI/Dane/1band.tif', bands: 1, bytes: 80_000 },
      // County orthoimagery: 5 GiB in, so the node asks for 15 GiB of scratch disk.
      { key: 'Counties/Eau Claire/4band.tif', bands: 4, bytes: 5 * 2 ** 30 },
    ],
    nodeSubmitFile: 'cog_node.sub',
    postCommand: ['/opt/node/bin/node', '/opt/cog/cog_pipeline.ts', 'post', '--input-bucket', 'sco-in'],
  });
  const lines = dag.split('\n').filter((l) => l && !l.startsWith('#'));
  assert.deepEqual(lines.slice(0, 3), [
    'JOB COG-Pipeline-DAG-*raw.csv_0 cog_node.sub',
    'VARS COG-Pipeline-DAG-*raw.csv_0 FULL_INFILE="Counties/WI/Wood/1band.tif" INFILE="1band.tif" ' +
      'FULL_OUTFILE="Counties/WI/Wood/1band.jpg" OUTFILE="1band.jpg" BANDS="1" DISK_KIB="2097152" LOGNAME="Counties_WI_Wood_1band.tif"',
    'RETRY COG-Pipeline-DAG-*raw.csv_0 3',
  ]);
  // Two images share a base name: their node files are kept apart; a unique one keeps its name.
  assert.match(dag, /LOGNAME="Counties_WI_Dane_1band\.tif"/);
  assert.match(dag, /VARS COG-Pipeline-DAG-\*raw\.csv_2 FULL_INFILE="Counties\/Eau Claire\/4band\.tif" INFILE="4band\.tif" .* DISK_KIB="15728640" LOGNAME="4band\.tif"/);
  assert.deepEqual(lines.slice(-2), [
    'FINAL final final.sub NOOP',
    'SCRIPT POST final /opt/node/bin/node /opt/cog/cog_pipeline.ts post --input-bucket sco-in',
  ]);
});

test('white space in a pattern cannot split DAG node names', () => {
  assert.equal(layerName('COG-Pipeline-DAG-*raw 2.csv'), 'COG-Pipeline-DAG-*raw_2.csv');
});

test('HTCondor argument and DAG value quoting', () => {
  assert.equal(condorArguments(['a', 'b c', "it's", 'x"y', 'say "hi"', '']), `"a 'b c' 'it''s' x""y 'say ""hi""' ''"`);
  assert.equal(dagVarValue('a "b" \\c'), '"a \\"b\\" \\\\c"');
});

test('scitokens_workaround.sub is one job on hold in batch scitoken-fakeout, as condor_submit reads it', () => {
  const text = readFileSync(new URL('../scitokens_workaround.sub', import.meta.url), 'utf8');
  const { procs } = parseSubmitDescription(text, { clusterId: 7, iwd: '/home/sco' });
  assert.equal(procs.length, 1);
  const attr = (name: string) => lookupAttribute(procs[0]!, name);
  assert.deepEqual(attr('JobBatchName'), { kind: 'literal', value: 'scitoken-fakeout' });
  assert.deepEqual(attr('Cmd'), { kind: 'literal', value: '/bin/sleep' });
  assert.deepEqual(splitArguments(procs[0]!), ['180']);
  assert.deepEqual(attr('JobStatus'), { kind: 'literal', value: 5 });
});

test('every image gets node files of its own, however keys and base names collide', () => {
  const names = nodeFileNames(['a/x.tif', 'b/x.tif', 'a_x.tif', 'c/a_x.tif', 'y.tif']);
  assert.deepEqual([...names.values()], ['a_x.tif', 'b_x.tif', 'a_x.tif~2', 'c_a_x.tif', 'y.tif']);
  assert.equal(new Set(names.values()).size, names.size);
});

/** The DAG as it was made before it was streamed: every node rendered, joined, then put in the file's template. */
function dagAsOneString(dag: WorkflowDag): string {
  const names = nodeFileNames(dag.images.map((i) => i.key));
  const nodes = dag.images.map((image, index) =>
    renderTemplate('dag_node.dag', {
      NODE_NAME: `${dag.layerName}_${index}`,
      SUBMIT_FILE: dag.nodeSubmitFile,
      FULL_INFILE: dagVarValue(image.key),
      INFILE: dagVarValue(baseName(image.key)),
      FULL_OUTFILE: dagVarValue(previewKey(image.key)),
      OUTFILE: dagVarValue(baseName(previewKey(image.key))),
      BANDS: dagVarValue(String(image.bands)),
      DISK_KIB: dagVarValue(String(nodeDiskKib(image.bytes))),
      LOGNAME: dagVarValue(names.get(image.key)!),
    }).trimEnd(),
  );
  return renderTemplate(
    'dagfile.dag',
    {
      TIMESTAMP: dag.timestamp,
      NODE_COUNT: String(dag.images.length),
      NODES: nodes.join('\n'),
      POST_COMMAND: dag.postCommand.map((w) => dagWord(w, 'POST script word')).join(' '),
    },
    ['NODES'],
  );
}

test('the DAG is written as a stream, byte for byte what one string of it would hold, and its size returned', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cog-dag-'));
  try {
    const dag = (images: WorkflowDag['images']): WorkflowDag => ({
      timestamp: '20261125-101500',
      layerName: layerName(dagBatchName('*raw.csv')),
      images,
      nodeSubmitFile: 'cog_node.sub',
      postCommand: ['/opt/node/bin/node', '/opt/cog/dist/cog_pipeline.js', 'post', '--input-bucket', 'sco-in'],
    });
    // Enough nodes for several pieces, names that collide, and keys of several bytes per character.
    const many = Array.from({ length: 6000 }, (_, i) => ({
      key: `Comtés/Eau Claire/${i % 7 === 0 ? 'même' : `tuile_${i}`}_${i % 3 === 0 ? '東京' : 'x'}.tif`,
      bands: (i % 4) + 1,
      bytes: i * 1_000_003,
    }));
    for (const images of [[], many.slice(0, 1), many]) {
      const file = path.join(dir, `dagfile-${images.length}.dag`);
      const bytes = await writeDag(file, dag(images));
      const expected = Buffer.from(dagAsOneString(dag(images)), 'utf8');
      assert.ok(readFileSync(file).equals(expected), `${images.length} nodes`);
      assert.equal(bytes, expected.length);
      assert.equal(renderDag(dag(images)), expected.toString('utf8'));
    }
    // Pieces of any size make the same text.
    assert.equal([...dagPieces(dag(many.slice(0, 50)), 100)].join(''), dagAsOneString(dag(many.slice(0, 50))));
    assert.ok([...dagPieces(dag(many))].length > 1, 'a large DAG is written in several pieces');

    // A DAG DAGMan could not read is refused, and leaves no file behind.
    const bad = path.join(dir, 'bad.dag');
    await assert.rejects(writeDag(bad, { ...dag(many), postCommand: ['/opt/my node/node', 'post'] }), /contains white space/);
    assert.equal(existsSync(bad), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
