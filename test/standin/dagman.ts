import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { applyRescue, DagParseError, parseDag, type NodeSpec } from './dag_file.ts';
import os from 'node:os';
import type { Execution, Outcome } from './executor.ts';
import { killGroup, startProcess, type Started } from './processes.ts';
import { JobStatus, numberAttr, status, stringAttr, SubmitRejected, type Job, type StandinSchedd } from './schedd.ts';
import { appendEvent, type Termination } from './userlog.ts';

/**
 * TEST STAND-IN for condor_dagman, run in-process for a scheduler universe job whose executable
 * is condor_dagman. It follows the HTCondor manual's DAGMan chapters and condor_dagman's own
 * behaviour (dagman_main.cpp, dag.cpp):
 *  - its arguments and environment are the DAGMan job's, as the schedd read them from the ad
 *    (the executor: Arguments/Args, Environment/Env, plus CONDOR_ID; nothing inherited);
 *  - its debug log (dagman.out) is `_CONDOR_DAGMAN_LOG` from that environment (relative to its
 *    working directory, the job's Iwd), else `default.dagman.out` in that working directory
 *    (dagman_main.cpp main_pre_dc_init), which for a job submitted through htcondor-api is the
 *    spool directory; the absolute name is put back in the environment scripts inherit;
 *  - arguments as condor_submit_dag writes them (-Dag, -MaxJobs, -MaxIdle, -UseDagDir,
 *    -Lockfile, -AutoRescue, -DoRescueFrom, ...); anything else stops it with a usage error;
 *  - the DAG file (dag_file.ts); node jobs are submitted as direct submission does, from the
 *    node's directory (the DAG's with -UseDagDir), with the node's VARS as macros, and with
 *    JobBatchName (the DAGMan job's), DAGManJobId, DAGNodeName and DAGManNodesLog set, so every
 *    node event also lands in `<dag>.nodes.log`; a failed submission is retried up to 6 times
 *    with a doubling delay (DAGMAN_MAX_SUBMIT_ATTEMPTS), then the node fails ($RETURN -1001);
 *  - at most -MaxJobs nodes have jobs in the queue at once, and at most -MaxIdle node jobs idle;
 *  - a node whose job fails, is removed (by periodic_remove, say, or after more than 100 holds,
 *    DAGMAN_MAX_JOB_HOLDS) or whose POST script fails is retried as RETRY allows, else fails;
 *  - DAG_* attributes in the DAGMan job's ad and `<dag>.dagman.out` follow every change (real
 *    DAGMan updates the ad every two minutes; tests cannot wait that long);
 *  - when no more nodes can run: failed nodes mean a partial rescue DAG `<dag>.rescueNNN` and
 *    DAG_Status 2; then the FINAL node runs (a NOOP node only writes DAGMan's fake submit and
 *    terminate events to the nodes log), its POST script in its directory with DAGMan's
 *    environment; the FINAL node's outcome decides DAGMan's exit status (the manual: "The
 *    success or failure of the FINAL node determines the success or failure of the entire DAG"),
 *    0 for success, else 1;
 *  - condor_rm of the DAGMan job (its RemoveKillSig, SIGUSR1): DAG_Status 4, a rescue DAG, the
 *    remaining node jobs removed, running POST scripts killed, and the FINAL node run;
 *  - condor_hold: no more submissions or scripts (running ones are killed and rerun later); node
 *    jobs carry on. Real DAGMan exits and, once released, recovers its state from the nodes log;
 *    this one keeps its state in memory and resumes. The same when DAGMan dies by a signal
 *    (Executor.crash) and its OnExitRemove requeues it: the next run resumes where it was.
 * POST script macros: $JOB $RETRY $MAX_RETRIES $JOBID $RETURN $PRE_SCRIPT_RETURN $DAG_STATUS
 * $FAILED_COUNT, each as a whole argument.
 */

const DagStatus = { ok: 0, error: 1, nodeFailed: 2, abort: 3, removed: 4, cycle: 5, halted: 6 } as const;
const DAG_STATUS_NAMES = ['DAG_STATUS_OK', 'DAG_STATUS_ERROR', 'DAG_STATUS_NODE_FAILED', 'DAG_STATUS_ABORT', 'DAG_STATUS_RM', 'DAG_STATUS_CYCLE', 'DAG_STATUS_HALTED'];

const EXIT_OKAY = 0;
const EXIT_ERROR = 1;
const MAX_SUBMIT_ATTEMPTS = 6;
/** After condor_rm, a FINAL node job gets two submit attempts (HTCondor 8.3.7 and later). */
const MAX_FINAL_SUBMIT_ATTEMPTS_AFTER_RM = 2;
const RETURN_SUBMIT_FAILED = -1001;
const RETURN_REMOVED = -1002;
const NOOP_PROC = 2147483647;
const MAX_RESCUE = 100;
const MAX_JOB_HOLDS = 100;
const NODES_MASK = '0,1,2,4,5,7,9,10,11,12,13,16,17,24,27,35,36';

type NodeState = 'unready' | 'ready' | 'submitted' | 'postrun' | 'done' | 'error';

class DagNode {
  state: NodeState;
  retries = 0;
  submitAttempts = 0;
  retryTimer: NodeJS.Timeout | undefined;
  /** Procs of the node's current job cluster still in the queue. */
  readonly procs = new Set<string>();
  procFailure: number | undefined;
  lastJobId = '';
  returnValue: number | undefined;
  post: Started | undefined;

  constructor(
    readonly spec: NodeSpec,
    readonly dir: string,
  ) {
    this.state = spec.done ? 'done' : spec.final ? 'unready' : 'ready';
  }
}

export type DagmanDeps = {
  schedd: StandinSchedd;
  submitRetryDelayMs: number;
  /** DAGMan's environment: the job's, as the schedd read it, with CONDOR_ID. */
  env: Record<string, string>;
  /** condor_dagman's arguments, as the schedd read them from the job's ad. */
  argv: string[];
};

type Args = {
  dagFile: string;
  maxJobs: number;
  maxIdle: number;
  useDagDir: boolean;
  lockFile: string | undefined;
  autoRescue: boolean;
  doRescueFrom: number;
};

export class DagmanRunner implements Execution {
  private readonly schedd: StandinSchedd;
  private readonly env: Record<string, string>;
  private readonly iwd: string;
  private readonly dagmanOut: string;
  private readonly argv: string[];
  private args: Args | undefined;
  private workDir = '';
  private nodesLog = '';
  private nodes: DagNode[] = [];
  private readonly byJob = new Map<string, DagNode>();
  private readonly pendingPosts: DagNode[] = [];
  private dagStatus: number = DagStatus.ok;
  private finalStarted = false;
  private removed = false;
  private paused = false;
  private ended = false;
  private started = false;
  private bootstrapped = false;
  private stepping = false;
  private again = false;
  private noopCount = 0;
  private rescueFile: string | undefined;
  private jobsSubmitted = 0;
  private jobsCompleted = 0;
  private lastStatus = '';
  private resolveRun: ((outcome: Outcome) => void) | undefined;

  constructor(
    private readonly job: Job,
    private readonly deps: DagmanDeps,
  ) {
    this.schedd = deps.schedd;
    this.iwd = stringAttr(job.ad, 'Iwd') ?? '/';
    this.argv = deps.argv;
    // main_pre_dc_init: _CONDOR_DAGMAN_LOG made absolute, else default.dagman.out in the working directory.
    const named = deps.env._CONDOR_DAGMAN_LOG;
    this.dagmanOut = named ? path.resolve(this.iwd, named) : path.join(this.iwd, 'default.dagman.out');
    // DAGMan's environment is its job's; scripts and node submissions inherit it.
    this.env = { ...deps.env, _CONDOR_DAGMAN_LOG: this.dagmanOut };
  }

  run(executing: () => void): Promise<Outcome> {
    const done = new Promise<Outcome>((resolve) => (this.resolveRun = resolve));
    executing();
    if (this.started) {
      this.log('Resuming (this stand-in kept the DAG state in memory; condor_dagman, started again after condor_release or a requeue, recovers it from the nodes log)');
      this.paused = false;
      this.step();
    } else {
      this.started = true;
      this.startUp();
    }
    return done;
  }

  vacate(why: 'remove' | 'hold'): void {
    if (this.ended) return;
    if (why === 'hold') {
      this.log('DAGMan job held: no more node submissions or scripts until it is released');
      this.pauseForNextRun();
      this.publish();
      this.settle({ kind: 'stopped' });
      return;
    }
    this.removedByUser();
  }

  /** DAGMan dies by `signal` (test hook): like a hold, the run ends and the state is kept for the next one. */
  crash(signal: NodeJS.Signals): void {
    if (this.ended) return;
    this.log(`Caught signal ${signal}: condor_dagman dies`);
    this.pauseForNextRun();
    this.settle({ kind: 'exited', termination: { exitCode: null, signal: os.constants.signals[signal] } });
  }

  /** Stops submitting and kills running POST scripts, to be run again when DAGMan runs again. */
  private pauseForNextRun(): void {
    this.paused = true;
    for (const node of this.nodes) {
      if (node.post) {
        killGroup(node.post.child, 'SIGKILL');
        node.post = undefined;
        this.pendingPosts.push(node);
      }
    }
  }

  shutdown(): void {
    this.ended = true;
    this.unsubscribe();
    for (const node of this.nodes) {
      clearTimeout(node.retryTimer);
      if (node.post) killGroup(node.post.child, 'SIGKILL');
    }
    this.settle({ kind: 'stopped' });
  }

  // -------------------------------------------------------------------------------------------
  // Start-up

  private startUp(): void {
    const { job } = this;
    const out = stringAttr(job.ad, 'Out');
    const err = stringAttr(job.ad, 'Err');
    try {
      if (out) writeFileSync(path.resolve(this.iwd, out), 'Executing condor dagman ... \n');
      if (err) writeFileSync(path.resolve(this.iwd, err), '');
    } catch (e) {
      this.settle({ kind: 'hold', reason: `Error from starter: Failed to open the standard output or error of condor_dagman: ${(e as Error).message}`, code: 7, subcode: 0 });
      return;
    }
    const argv = this.argv;
    const execName = `condor_scheduniv_exec.${job.id}`;
    this.log('******************************************************');
    this.log(`** ${execName} (CONDOR_DAGMAN) STARTING UP`);
    this.log(`** ${stringAttr(job.ad, 'Cmd') ?? 'condor_dagman'}`);
    this.log('** TEST STAND-IN for condor_dagman (cog-pipeline test/standin/dagman.ts)');
    this.log(`** PID = ${process.pid}`);
    this.log('******************************************************');
    [execName, ...argv].forEach((a, i) => this.log(`argv[${i}] == "${a}"`));
    try {
      this.args = parseArgs(argv);
    } catch (e) {
      this.log((e as Error).message);
      this.exit(EXIT_ERROR);
      return;
    }
    const args = this.args;
    const dagFile = path.resolve(this.iwd, args.dagFile);
    this.workDir = args.useDagDir ? path.dirname(dagFile) : this.iwd;
    this.nodesLog = `${dagFile}.nodes.log`;
    this.log(`Default node log file is: <${this.nodesLog}>`);
    if (args.lockFile) {
      const lock = path.resolve(this.iwd, args.lockFile);
      if (existsSync(lock)) {
        this.log(`ERROR: lock file ${lock} exists: a DAGMan for this DAG ran before and did not finish; condor_dagman would run in recovery mode, which this stand-in does not do`);
        this.exit(EXIT_ERROR);
        return;
      }
      this.log(`DAG Lockfile will be written to ${args.lockFile}`);
      this.tryWrite(lock, `${process.pid}\n`);
    }
    this.log(`DAG Input file is ${args.dagFile}`);
    this.log('Parsing 1 dagfiles');
    this.log(`Parsing ${args.dagFile} ...`);
    let specs: NodeSpec[];
    try {
      const text = readFileSync(dagFile, 'utf8');
      const parsed = parseDag(text, args.dagFile, { useDagDir: args.useDagDir });
      for (const w of parsed.warnings) this.log(w);
      specs = parsed.nodes;
      this.applyAutoRescue(dagFile, specs);
    } catch (e) {
      const message = e instanceof DagParseError ? e.message : `ERROR: Could not open file ${dagFile} for input (cwd ${this.workDir}) (${(e as Error).message})`;
      this.log(message);
      this.log(`Failed to parse ${args.dagFile}`);
      this.exit(EXIT_ERROR);
      return;
    }
    this.nodes = specs.map((s) => new DagNode(s, s.dir ? path.resolve(this.workDir, s.dir) : this.workDir));
    this.log(`Dag contains ${this.nodes.length} total jobs`);
    this.log('Bootstrapping...');
    this.log(`Number of pre-completed nodes: ${this.nodes.filter((n) => n.state === 'done').length}`);
    this.log(`MultiLogFiles: truncating log file ${this.nodesLog}`);
    this.tryWrite(this.nodesLog, '');
    this.bootstrapped = true;
    this.schedd.on('status', this.onStatus);
    this.publish();
    this.log('Registering condor_event_timer...');
    this.step();
  }

  private applyAutoRescue(dagFile: string, specs: NodeSpec[]): void {
    const args = this.args!;
    if (!args.autoRescue && args.doRescueFrom === 0) return;
    const number = args.doRescueFrom > 0 ? args.doRescueFrom : lastRescue(dagFile);
    if (number === 0) return;
    const file = rescueName(dagFile, number);
    if (!existsSync(file)) throw new DagParseError(`ERROR: rescue DAG ${file} (-DoRescueFrom ${number}) does not exist`);
    this.log(`Found rescue DAG number ${number}; running ${args.dagFile} in combination with rescue DAG ${file}`);
    applyRescue(readFileSync(file, 'utf8'), file, specs);
  }

  // -------------------------------------------------------------------------------------------
  // The main loop: submit what may be submitted, run scripts, and end when nothing is left

  private step(): void {
    if (this.stepping) {
      this.again = true;
      return;
    }
    this.stepping = true;
    try {
      do {
        this.again = false;
        this.cycle();
      } while (this.again && !this.ended);
    } finally {
      this.stepping = false;
    }
  }

  private cycle(): void {
    if (this.ended || this.paused || !this.args) return;
    const final = this.nodes.find((n) => n.spec.final);
    let justSubmitted = 0;
    for (const node of this.nodes) {
      if (node.state !== 'ready' || node.retryTimer) continue;
      if (node.spec.final !== this.finalStarted) continue;
      if (!node.spec.final && this.throttled()) break;
      if (this.submit(node)) justSubmitted++;
    }
    if (justSubmitted > 0) this.log(`Just submitted ${justSubmitted} job${justSubmitted === 1 ? '' : 's'} this cycle...`);
    while (this.pendingPosts.length > 0) this.runPost(this.pendingPosts.shift()!);
    this.publish();

    const active = this.nodes.some(
      (n) => n.state === 'submitted' || n.state === 'postrun' || n.retryTimer !== undefined || (n.state === 'ready' && n.spec.final === this.finalStarted),
    );
    if (active) return;
    if (!this.finalStarted) {
      const failed = this.nodes.filter((n) => n.state === 'error');
      if (failed.length > 0) {
        this.log('ERROR: the following job(s) failed:');
        for (const n of failed) this.log(`  Node ${n.spec.name}: ${describeFailure(n)}`);
        this.writeRescue();
      }
      if (final) {
        this.startFinal();
        this.again = true;
        return;
      }
      if (failed.length === 0) this.log('All jobs Completed!');
      this.exit(failed.length === 0 ? EXIT_OKAY : EXIT_ERROR);
      return;
    }
    if (final?.state === 'done') {
      this.log('All jobs Completed!');
      this.exit(EXIT_OKAY);
    } else {
      this.log('ERROR: the following job(s) failed:');
      for (const n of this.nodes.filter((n) => n.state === 'error')) this.log(`  Node ${n.spec.name}: ${describeFailure(n)}`);
      this.writeRescue();
      this.exit(EXIT_ERROR);
    }
  }

  private throttled(): boolean {
    const { maxJobs, maxIdle } = this.args!;
    const queued = this.nodes.filter((n) => n.state === 'submitted').length;
    if (maxJobs > 0 && queued >= maxJobs) return true;
    if (maxIdle > 0) {
      const idle = [...this.byJob.keys()].filter((id) => {
        const j = this.schedd.get(id);
        return j !== undefined && status(j) === JobStatus.idle;
      }).length;
      if (idle >= maxIdle) return true;
    }
    return false;
  }

  private startFinal(): void {
    this.finalStarted = true;
    const final = this.nodes.find((n) => n.spec.final)!;
    for (const n of this.nodes) {
      clearTimeout(n.retryTimer);
      n.retryTimer = undefined;
    }
    this.log(`Starting final node...`);
    final.state = 'ready';
  }

  // -------------------------------------------------------------------------------------------
  // Node jobs

  /** Direct submission of a node's job; true when it is in the queue (or, NOOP, done with). */
  private submit(node: DagNode): boolean {
    const { spec } = node;
    this.log(`Submitting HTCondor Node ${spec.name} job(s)...`);
    if (spec.noop) {
      this.fakeSubmit(node);
      return true;
    }
    this.log(`Submitting node ${spec.name} from file ${spec.submitFile} using direct job submission`);
    let ids: string[];
    try {
      const text = readFileSync(path.resolve(node.dir, spec.submitFile), 'utf8');
      const macros: Record<string, string> = {};
      for (const [name, value] of spec.vars) macros[name] = value.replaceAll('$(JOB)', spec.name).replaceAll('$(RETRY)', String(node.retries));
      if (spec.final) {
        macros.DAG_STATUS = String(this.dagStatus);
        macros.FAILED_COUNT = String(this.failedCount());
      }
      const batch = stringAttr(this.job.ad, 'JobBatchName') ?? `${path.basename(this.args!.dagFile)}+${this.job.cluster}`;
      ids = this.schedd.submit(text, {
        remote: false,
        iwd: node.dir,
        env: this.env,
        macros,
        extra: {
          DAGManJobId: this.job.cluster,
          DAGNodeName: spec.name,
          DAGParentNodeNames: '',
          JobBatchName: batch,
          DAGManNodesLog: this.nodesLog,
          DAGManNodesMask: NODES_MASK,
        },
      }).jobIds;
    } catch (e) {
      this.submitFailed(node, e instanceof SubmitRejected ? e.message : (e as Error).message);
      return false;
    }
    node.submitAttempts = 0;
    node.state = 'submitted';
    node.procs.clear();
    node.procFailure = undefined;
    for (const id of ids) {
      node.procs.add(id);
      this.byJob.set(id, node);
      this.log(`\tassigned HTCondor ID (${id}.0)`);
      this.event('ULOG_SUBMIT', node, id);
      // A job submitted on hold is held from the start.
      const j = this.schedd.get(id);
      if (j && status(j) === JobStatus.held) this.event('ULOG_JOB_HELD', node, id, `Hold reason: ${stringAttr(j.ad, 'HoldReason') ?? ''}`);
    }
    this.jobsSubmitted += ids.length;
    return true;
  }

  private submitFailed(node: DagNode, message: string): void {
    node.submitAttempts++;
    this.log(message);
    this.log('ERROR: submit attempt failed');
    const max = this.removed && node.spec.final ? MAX_FINAL_SUBMIT_ATTEMPTS_AFTER_RM : MAX_SUBMIT_ATTEMPTS;
    if (node.submitAttempts < max) {
      const delay = this.deps.submitRetryDelayMs * 2 ** (node.submitAttempts - 1);
      this.log(`Job submit try ${node.submitAttempts}/${max} failed, will try again in >= ${delay / 1000} seconds.`);
      node.retryTimer = setTimeout(() => {
        node.retryTimer = undefined;
        this.step();
      }, delay);
      return;
    }
    this.log(`Job submit failed after ${node.submitAttempts} tr${node.submitAttempts === 1 ? 'y' : 'ies'}.`);
    node.submitAttempts = 0;
    this.jobDone(node, RETURN_SUBMIT_FAILED);
  }

  /** A NOOP node: DAGMan writes a fake submit and a fake successful termination to the nodes log. */
  private fakeSubmit(node: DagNode): void {
    const subproc = ++this.noopCount;
    const now = this.schedd.now();
    try {
      appendEvent(this.nodesLog, 0, NOOP_PROC, now, { kind: 'submit', host: '<dummy-submit-for-noop-job>', dagNode: node.spec.name }, subproc);
      appendEvent(this.nodesLog, 0, NOOP_PROC, now, { kind: 'terminate', exitCode: 0, signal: null }, subproc);
    } catch {
      // As for any log DAGMan cannot write: it carries on.
    }
    const id = `0.${NOOP_PROC}`;
    node.lastJobId = id;
    this.log(`\tassigned HTCondor ID (${id}.${subproc})`);
    this.log(`Event: ULOG_SUBMIT for HTCondor Node ${node.spec.name} (${id}.${subproc}) {${stamp(now)}}`);
    this.log(`Event: ULOG_JOB_TERMINATED for HTCondor Node ${node.spec.name} (${id}.${subproc}) {${stamp(now)}}`);
    this.log(`Node ${node.spec.name} job proc (${id}.${subproc}) completed successfully.`);
    this.jobDone(node, 0);
  }

  /** Node job events, as DAGMan reads them from the nodes log. */
  private readonly onStatus = (job: Job, previous: number) => {
    const node = this.byJob.get(job.id);
    if (!node || this.ended) return;
    // condor_rm of DAGMan and its nodes together: DAGMan gets its SIGUSR1 before it reads the
    // nodes' abort events from the log (it polls the log), so it handles its removal first.
    if (status(this.job) === JobStatus.removed && !this.removed && !this.paused && this.resolveRun) this.removedByUser();
    const s = status(job);
    if (s === JobStatus.running && previous !== JobStatus.running) this.event('ULOG_EXECUTE', node, job.id);
    else if (s === JobStatus.held) {
      this.event('ULOG_JOB_HELD', node, job.id, `Hold reason: ${stringAttr(job.ad, 'HoldReason') ?? ''}`);
      // DAGMAN_MAX_JOB_HOLDS: a node job held too often is removed, which fails the node.
      if ((numberAttr(job.ad, 'NumHolds') ?? 0) > MAX_JOB_HOLDS) {
        this.log(`Node ${node.spec.name} job proc (${job.id}.0) has been held ${numberAttr(job.ad, 'NumHolds')} times; removing it`);
        this.schedd.remove([job], `DAGMan: job held more than DAGMAN_MAX_JOB_HOLDS (${MAX_JOB_HOLDS}) times`);
      }
    } else if (s === JobStatus.idle && previous === JobStatus.held) this.event('ULOG_JOB_RELEASED', node, job.id);
    else if (s === JobStatus.idle && previous === JobStatus.running) this.event('ULOG_JOB_EVICTED', node, job.id);
    else if (s === JobStatus.completed) {
      this.jobsCompleted++;
      // $RETURN of a job killed by a signal is minus the signal number.
      const bySignal = job.ad.evaluate('ExitBySignal');
      const code = bySignal.type === 'boolean' && bySignal.value ? -(numberAttr(job.ad, 'ExitSignal') ?? 0) : (numberAttr(job.ad, 'ExitCode') ?? -1);
      this.event('ULOG_JOB_TERMINATED', node, job.id);
      this.log(code === 0 ? `Node ${node.spec.name} job proc (${job.id}.0) completed successfully.` : `Node ${node.spec.name} job proc (${job.id}.0) failed with status ${code}.`);
      this.procEnded(node, job.id, code);
    } else if (s === JobStatus.removed) {
      this.event('ULOG_JOB_ABORTED', node, job.id);
      this.log(`Node ${node.spec.name} job proc (${job.id}.0) failed with status ${RETURN_REMOVED} (the job was removed).`);
      this.procEnded(node, job.id, RETURN_REMOVED);
    }
    this.step();
  };

  private procEnded(node: DagNode, id: string, code: number): void {
    node.procs.delete(id);
    this.byJob.delete(id);
    node.lastJobId = id;
    if (code !== 0 && node.procFailure === undefined) {
      node.procFailure = code;
      // One failed proc fails the cluster: DAGMan removes the rest.
      const rest = [...node.procs].map((p) => this.schedd.get(p)).filter((j): j is Job => j !== undefined);
      if (rest.length > 0) this.schedd.remove(rest, `DAG Node ${node.spec.name} failed`);
    }
    if (node.procs.size === 0) this.jobDone(node, node.procFailure ?? 0);
  }

  private jobDone(node: DagNode, ret: number): void {
    node.returnValue = ret;
    if (node.spec.post !== undefined && (!this.removed || node.spec.final)) {
      node.state = 'postrun';
      this.pendingPosts.push(node);
    } else if (ret === 0) this.succeeded(node);
    else this.failed(node);
    this.step();
  }

  private succeeded(node: DagNode): void {
    node.state = 'done';
    this.log(`Node ${node.spec.name} job completed`);
  }

  private failed(node: DagNode): void {
    const { spec } = node;
    const last = node.returnValue ?? -1;
    const noMore = this.finalStarted || this.removed || (spec.unlessExit !== undefined && spec.unlessExit === last);
    if (node.retries < spec.retry && !noMore) {
      node.retries++;
      node.state = 'ready';
      this.log(`Retrying node ${spec.name} (retry #${node.retries} of ${spec.retry})...`);
      return;
    }
    if (node.retries < spec.retry) {
      this.log(`Aborting further retries of node ${spec.name} ${this.finalStarted ? 'because final node is running ' : ''}(last attempt returned ${last})`);
    }
    node.state = 'error';
    if (this.dagStatus === DagStatus.ok) this.dagStatus = DagStatus.nodeFailed;
  }

  // -------------------------------------------------------------------------------------------
  // POST scripts

  private runPost(node: DagNode): void {
    const { spec } = node;
    const words = spec.post!.split(/[ \t]+/).filter((w) => w !== '');
    const macros: Record<string, string> = {
      $JOB: spec.name,
      $RETRY: String(node.retries),
      $MAX_RETRIES: String(spec.retry),
      $JOBID: node.lastJobId,
      $RETURN: String(node.returnValue ?? 0),
      $PRE_SCRIPT_RETURN: '-1',
      $DAG_STATUS: String(this.dagStatus),
      $FAILED_COUNT: String(this.failedCount()),
    };
    const [program, ...args] = words.map((w) => macros[w.toUpperCase()] ?? w);
    // DaemonCore execs the script without a PATH search: a relative name is in the node's directory.
    const command = path.resolve(node.dir, program!);
    this.log(`Running POST script of Node ${spec.name}...`);
    startProcess(command, args, { cwd: node.dir, env: this.env }).then(
      (started) => {
        if (this.ended || this.paused) {
          killGroup(started.child, 'SIGKILL');
          return;
        }
        node.post = started;
        void started.exited.then((t) => {
          if (node.post !== started) return; // killed for a hold or removal
          node.post = undefined;
          this.postDone(node, t);
        });
      },
      (err: Error) => {
        this.log(`Warning: could not run the POST script of Node ${spec.name} (${command}): ${err.message}`);
        this.postDone(node, { exitCode: 1, signal: null });
      },
    );
  }

  private postDone(node: DagNode, t: Termination): void {
    if (this.ended) return;
    const { name } = node.spec;
    if (t.signal === null && t.exitCode === 0) {
      this.log(`POST Script of node ${name} completed successfully.`);
      this.succeeded(node);
    } else {
      const how = t.signal === null ? `failed with status ${t.exitCode}` : `died on signal ${t.signal}`;
      this.log(`POST Script of Node ${name} ${how}`);
      node.returnValue = t.signal === null ? t.exitCode : -t.signal;
      this.failed(node);
    }
    this.step();
  }

  // -------------------------------------------------------------------------------------------
  // condor_rm, the end, and what DAGMan leaves behind

  /**
   * condor_rm (SIGUSR1): as main_shutdown_rescue does, a rescue DAG, the node jobs removed (the
   * schedd's own removal of them may come after this), scripts killed, then the FINAL node.
   * The main loop waits until all of it is done, so node aborts cannot advance the DAG meanwhile.
   */
  private removedByUser(): void {
    if (this.ended || this.removed) return;
    const wasStepping = this.stepping;
    this.stepping = true;
    try {
      this.log('Received SIGUSR1');
      this.log('Aborting DAG...');
      this.dagStatus = DagStatus.removed;
      this.removed = true;
      this.paused = false;
      this.writeRescue();
      this.log('Removing submitted jobs...');
      const left = this.schedd.query(`DAGManJobId =?= ${this.job.cluster}`).filter((j) => status(j) !== JobStatus.removed);
      if (left.length > 0) this.schedd.remove(left, 'DAG Removed: User removed scheduler job from queue.');
      for (const node of this.nodes) {
        if (node.post && !node.spec.final) {
          this.log('Removing running scripts...');
          killGroup(node.post.child, 'SIGKILL');
          node.post = undefined;
          node.state = 'error';
        }
      }
      if (this.nodes.some((n) => n.spec.final) && !this.finalStarted) this.startFinal();
    } finally {
      this.stepping = wasStepping;
    }
    this.step();
  }

  private exit(code: number): void {
    if (this.ended) return;
    this.ended = true;
    this.unsubscribe();
    // A DAG that never parsed has no DAG_* attributes, as with condor_dagman.
    if (this.bootstrapped) this.publish();
    if (this.args?.lockFile) rmSync(path.resolve(this.iwd, this.args.lockFile), { force: true });
    this.log(`**** condor_scheduniv_exec.${this.job.id} (condor_DAGMAN) pid ${process.pid} EXITING WITH STATUS ${code}`);
    this.settle({ kind: 'exited', termination: { exitCode: code, signal: null } });
  }

  private settle(outcome: Outcome): void {
    const resolve = this.resolveRun;
    this.resolveRun = undefined;
    resolve?.(outcome);
  }

  private unsubscribe(): void {
    this.schedd.off('status', this.onStatus);
  }

  /** A partial rescue DAG; a second one in the same run replaces the first, as DAGMan does. */
  private writeRescue(): void {
    const dagFile = path.resolve(this.iwd, this.args!.dagFile);
    if (!this.rescueFile) this.rescueFile = rescueName(dagFile, Math.min(lastRescue(dagFile) + 1, MAX_RESCUE));
    this.log(`Writing Rescue DAG to ${this.rescueFile}...`);
    const created = new Date();
    const p = (n: number) => String(n).padStart(2, '0');
    const failed = this.nodes.filter((n) => n.state === 'error');
    const lines = [
      '# Rescue DAG file, created after running',
      `#   the ${this.args!.dagFile} DAG file`,
      `# Created ${created.getUTCMonth() + 1}/${created.getUTCDate()}/${created.getUTCFullYear()} ${p(created.getUTCHours())}:${p(created.getUTCMinutes())}:${p(created.getUTCSeconds())} UTC`,
      '# Rescue DAG version: 2.0.1 (partial)',
      '#',
      `# Total number of Nodes: ${this.nodes.length}`,
      `# Nodes premarked DONE: ${this.nodes.filter((n) => n.state === 'done').length}`,
      `# Nodes that failed: ${failed.length}`,
      `#   ${failed.map((n) => `${n.spec.name},`).join('')}<ENDLIST>`,
      '',
    ];
    for (const node of this.nodes) {
      if (node.state === 'done' && !node.spec.final) lines.push(`DONE ${node.spec.name}`);
      if (node.spec.retry > 0) lines.push(`RETRY ${node.spec.name} ${node.spec.retry}${node.spec.unlessExit !== undefined ? ` UNLESS-EXIT ${node.spec.unlessExit}` : ''}`);
    }
    if (!this.tryWrite(this.rescueFile, lines.join('\n') + '\n')) this.log(`Could not open ${this.rescueFile} for writing.`);
  }

  private failedCount(): number {
    return this.nodes.filter((n) => n.state === 'error').length;
  }

  /** DAG_* attributes of the DAGMan job, and the status table in dagman.out when it changed. */
  private publish(): void {
    const count = (s: NodeState) => this.nodes.filter((n) => n.state === s).length;
    const jobs = [...this.byJob.keys()].map((id) => this.schedd.get(id)).filter((j): j is Job => j !== undefined);
    const jobsIn = (s: number) => jobs.filter((j) => status(j) === s).length;
    const figures = {
      DAG_NodesTotal: this.nodes.length,
      DAG_NodesDone: count('done'),
      DAG_NodesPrerun: 0,
      DAG_NodesQueued: count('submitted'),
      DAG_NodesPostrun: count('postrun'),
      DAG_NodesReady: count('ready'),
      DAG_NodesUnready: count('unready'),
      DAG_NodesFailed: count('error'),
      DAG_NodesFutile: 0,
    };
    const ad = this.job.ad;
    ad.set('DAG_Status', this.dagStatus);
    ad.set('DAG_InRecovery', 0);
    for (const [name, value] of Object.entries(figures)) ad.set(name, value);
    ad.set('DAG_JobsSubmitted', this.jobsSubmitted);
    ad.set('DAG_JobsCompleted', this.jobsCompleted);
    ad.set('DAG_JobsIdle', jobsIn(JobStatus.idle));
    ad.set('DAG_JobsRunning', jobsIn(JobStatus.running));
    ad.set('DAG_JobsHeld', jobsIn(JobStatus.held));
    ad.set('DAG_AdUpdateTime', Math.floor(this.schedd.now().getTime() / 1000));
    const table = [
      `DAG status: ${this.dagStatus} (${DAG_STATUS_NAMES[this.dagStatus]})`,
      `Of ${figures.DAG_NodesTotal} nodes total:`,
      ' Done     Pre   Queued    Post   Ready   Un-Ready   Failed   Futile',
      '  ===     ===      ===     ===     ===        ===      ===      ===',
      columns([figures.DAG_NodesDone, 0, figures.DAG_NodesQueued, figures.DAG_NodesPostrun, figures.DAG_NodesReady, figures.DAG_NodesUnready, figures.DAG_NodesFailed, figures.DAG_NodesFutile]),
      `${jobsIn(JobStatus.held)} job proc(s) currently held`,
    ];
    const text = table.join('\n');
    if (text === this.lastStatus) return;
    this.lastStatus = text;
    for (const line of table) this.log(line);
  }

  private event(name: string, node: DagNode, id: string, detail?: string): void {
    this.log(`Event: ${name} for HTCondor Node ${node.spec.name} (${id}.0) {${stamp(this.schedd.now())}}`);
    if (detail) this.log(`\t${detail}`);
  }

  /** A line in dagman.out, stamped as DAGMan's debug log stamps them. */
  private log(message: string): void {
    const when = stamp(this.schedd.now());
    this.tryAppend(this.dagmanOut, message.split('\n').map((l) => `${when} ${l}\n`).join(''));
  }

  private tryAppend(file: string, text: string): boolean {
    try {
      appendFileSync(file, text);
      return true;
    } catch {
      return false;
    }
  }

  private tryWrite(file: string, text: string): boolean {
    try {
      writeFileSync(file, text);
      return true;
    } catch {
      return false;
    }
  }
}

function describeFailure(node: DagNode): string {
  const ret = node.returnValue;
  if (ret === RETURN_SUBMIT_FAILED) return 'Job submit failed';
  if (ret === RETURN_REMOVED) return 'Job was removed';
  return node.spec.post !== undefined ? `POST script failed (job returned ${ret})` : `Job failed with status ${ret}`;
}

function parseArgs(argv: string[]): Args {
  const usage = (why: string) => new Error(`${why}\nUsage: condor_dagman -p 0 -f -l . -Lockfile <NAME.dag.lock> -Dag <NAME.dag> [-MaxJobs N] [-MaxIdle N] [-UseDagDir] [-AutoRescue 0|1] [-DoRescueFrom N] ...`);
  const dags: string[] = [];
  const args: Args = { dagFile: '', maxJobs: 0, maxIdle: 0, useDagDir: false, lockFile: undefined, autoRescue: true, doRescueFrom: 0 };
  const valueOf = (i: number, flag: string) => {
    const v = argv[i + 1];
    if (v === undefined || v === '') throw usage(`No value specified after ${flag}`);
    return v;
  };
  const integer = (i: number, flag: string) => {
    const v = valueOf(i, flag);
    if (!/^-?\d+$/.test(v)) throw usage(`Integer missing after ${flag}`);
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-')) {
      dags.push(a);
      continue;
    }
    switch (a.toLowerCase()) {
      // DaemonCore's own options (port, foreground, log directory) mean nothing here.
      case '-p':
      case '-l':
        valueOf(i++, a);
        break;
      case '-f':
      case '-suppress_notification':
      case '-dontsuppress_notification':
      case '-verbose':
      case '-allowversionmismatch':
        break;
      case '-dag':
        dags.push(valueOf(i++, a));
        break;
      case '-lockfile':
        args.lockFile = valueOf(i++, a);
        break;
      case '-maxjobs':
        args.maxJobs = integer(i++, a);
        break;
      case '-maxidle':
        args.maxIdle = integer(i++, a);
        break;
      case '-debug':
        integer(i++, a);
        break;
      case '-usedagdir':
        args.useDagDir = true;
        break;
      case '-autorescue':
        args.autoRescue = integer(i++, a) !== 0;
        break;
      case '-dorescuefrom':
        args.doRescueFrom = integer(i++, a);
        break;
      case '-csdversion':
      case '-dagman':
        valueOf(i++, a);
        break;
      default:
        throw usage(`Unrecognized argument: ${a} (or one this stand-in does not implement)`);
    }
  }
  if (dags.length === 0) throw usage('No DAG specified');
  if (dags.length > 1) throw usage(`This stand-in runs one DAG file per DAGMan job, not ${dags.length}`);
  args.dagFile = dags[0]!;
  return args;
}

/** The status table's figures, in DAGMan's `%5d   %5d    %5d   %5d   %5d      %5d    %5d    %5d`. */
function columns(n: number[]): string {
  const gaps = ['', '   ', '    ', '   ', '   ', '      ', '    ', '    '];
  return n.map((v, i) => gaps[i] + String(v).padStart(5)).join('');
}

function rescueName(dagFile: string, n: number): string {
  return `${dagFile}.rescue${String(n).padStart(3, '0')}`;
}

function lastRescue(dagFile: string): number {
  const base = path.basename(dagFile);
  let last = 0;
  try {
    for (const name of readdirSync(path.dirname(dagFile))) {
      const m = /^(.*)\.rescue(\d{3})$/.exec(name);
      if (m && m[1] === base) last = Math.max(last, Number(m[2]));
    }
  } catch {
    // No directory, no rescue DAG.
  }
  return last;
}

/** `MM/DD/YY HH:MM:SS`, DAGMan's time stamps. */
function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getMonth() + 1)}/${p(d.getDate())}/${p(d.getFullYear() % 100)} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
