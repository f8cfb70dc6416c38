/**
 * The submit-description reader of the HTCondor stand-in: turns the text `condor_submit` reads
 * (and that htcondor-api receives as `POST /api/v1/jobs {"submit_file": ...}`) into job ads.
 *
 * Semantics follow the HTCondor manual (condor_submit, "htcondor-jdl") and condor_submit's own
 * submit_utils.cpp for attribute names and values; golang-htcondor (the real htcondor-api) was
 * read for which commands it maps. It is a pure function of its input: no filesystem, and no
 * clock unless `ctx.now` is left out (then the current time stamps QDate).
 *
 * What is read:
 *  - `name = value` lines (names case-insensitive, both sides trimmed), blank lines, `#` comment
 *    lines (a whole line only: a `#` later in a line is part of the value, as in condor_submit),
 *    and a trailing backslash that joins the next line (a comment line never continues; a
 *    commented-out line inside a continuation must itself end in a backslash).
 *  - `+Attr = expr` and `MY.Attr = expr`: custom job attributes, kept as ClassAd expression text
 *    (a lone string literal becomes a string). Applied last, so they override commands.
 *  - Macros: `$(name)` and `$(name:default)` from the description's own definitions, the
 *    built-ins `$(Cluster)`/`$(ClusterId)`, `$(Process)`/`$(ProcId)`, `$(JobId)`, `$(Step)`,
 *    `$(ItemIndex)`/`$(Row)`, `$(Item)` and `$(Node)` (both empty: there is no item list),
 *    `$(DOLLAR)`, and `$ENV(NAME)` from `ctx.env`. Names are case-insensitive; an undefined macro
 *    expands to nothing, as in condor_submit; `foo = $(foo) more` extends the earlier value.
 *    Values are expanded per job at the queue statement, so `$(Process)` differs per proc.
 *    `$$(attr)` is left as it is (it is substituted at match time).
 *  - One queue statement, last: `queue` or `queue N`.
 *
 * What is rejected (SubmitDescriptionError, naming the line): a line that is not one of the
 * above; a name that is neither a command listed in SUBMIT_COMMANDS nor a macro that the
 * description references with `$(...)` (commands that are not listed are rejected too, even
 * real condor_submit ones: this stand-in does not pretend to honour what it does not
 * implement); other queue forms (`in`, `from`, `matching`, expressions); text after the queue
 * statement; no queue statement at all; `if`/`include`/`use`, `+=`, `@=`; `$FUNC(...)` macro
 * functions; malformed values (bad booleans, quantities, signals, cron fields, unbalanced
 * expressions, unterminated quotes in arguments or environment).
 *
 * Not modelled: condor_submit's additions to Requirements (it stays as written), file
 * existence checks, request_* defaults from configuration, and the /dev/null defaults for
 * input/output/error. Policy defaults are set as condor_submit sets them (OnExitRemove = true,
 * OnExitHold/PeriodicHold/PeriodicRelease/PeriodicRemove = false, JobPrio = 0,
 * JobNotification = 0), as are Arguments = "" and Environment = "" when none are given.
 */
import path from 'node:path';

export type AttrValue =
  | { kind: 'literal'; value: string | number | boolean }
  | { kind: 'expr'; text: string };

/** A job ad: attribute name → value, in insertion order. Names are unique case-insensitively. */
export type JobAttributes = Map<string, AttrValue>;

export type SubmitResult = { procs: JobAttributes[] };

export type SubmitContext = {
  clusterId: number;
  /** The submitter's working directory: the default Iwd and the base of a relative executable. */
  iwd: string;
  /** The submitter's environment, for `$ENV(...)` and `getenv`. */
  env?: Record<string, string>;
  owner?: string;
  /** Submission time (QDate, EnteredCurrentStatus). */
  now?: Date;
  /**
   * Macros defined before the description is read, as DAGMan passes a node's VARS (prepended,
   * DAGMAN_DEFAULT_APPEND_VARS being false): the description's own definitions win, and a macro
   * the description never uses is no error. A name that is a submit command acts as one.
   */
  macros?: Record<string, string>;
};

export class SubmitDescriptionError extends Error {
  /** The reason alone, without the line prefix. */
  readonly reason: string;
  readonly lineNumber: number | undefined;
  readonly lineText: string | undefined;

  constructor(reason: string, lineNumber?: number, lineText?: string, where = 'on') {
    const at = lineNumber === undefined ? '' : `${where} Line ${lineNumber} of the submit description: `;
    const shown = lineText === undefined ? '' : ` (line ${lineNumber} reads: ${lineText})`;
    super(`ERROR: ${at}${reason}${shown}`);
    this.name = 'SubmitDescriptionError';
    this.reason = reason;
    this.lineNumber = lineNumber;
    this.lineText = lineText;
  }
}

/**
 * The submit commands this stand-in understands, with the attributes they set. Any other
 * command is rejected. (`args` is condor_submit's alternative name for `arguments`,
 * `s3_*_file` for `aws_*_file`.)
 */
export const SUBMIT_COMMANDS: Readonly<Record<string, string>> = {
  universe: 'JobUniverse (vanilla 5, scheduler 7, local 12; container and docker are vanilla plus WantContainer / WantDocker)',
  executable: 'Cmd (made absolute against the submit directory unless transfer_executable = false)',
  arguments: 'Arguments (new syntax, in double quotes) or Args (old syntax)',
  args: 'as arguments',
  environment: 'Environment (both syntaxes; stored in the new syntax)',
  getenv: 'Environment (imports ctx.env: true, false, or a match list)',
  input: 'In',
  output: 'Out',
  error: 'Err',
  log: 'UserLog (absolute against Iwd)',
  dagman_log: 'DAGManNodesLog (absolute against Iwd)',
  initialdir: 'Iwd (absolute against the submit directory)',
  transfer_executable: 'TransferExecutable',
  transfer_input_files: 'TransferInput',
  transfer_output_files: 'TransferOutput',
  transfer_output_remaps: 'TransferOutputRemaps (surrounding quotes stripped)',
  should_transfer_files: 'ShouldTransferFiles (YES, NO, IF_NEEDED)',
  when_to_transfer_output: 'WhenToTransferOutput (ON_EXIT, ON_EXIT_OR_EVICT, ON_SUCCESS)',
  preserve_relative_paths: 'PreserveRelativePaths',
  max_transfer_input_mb: 'MaxTransferInputMB',
  max_transfer_output_mb: 'MaxTransferOutputMB',
  transfer_plugins: 'TransferPlugins',
  copy_to_spool: 'CopyToSpool (as golang-htcondor sets it; condor_submit no longer knows it)',
  aws_access_key_id_file: 'EC2AccessKeyId',
  aws_secret_access_key_file: 'EC2SecretAccessKey',
  s3_access_key_id_file: 'EC2AccessKeyId',
  s3_secret_access_key_file: 'EC2SecretAccessKey',
  aws_region: 'AWSRegion',
  request_cpus: 'RequestCpus',
  request_memory: 'RequestMemory (MiB; K, M, G, T units)',
  request_disk: 'RequestDisk (KiB; K, M, G, T units)',
  request_gpus: 'RequestGPUs',
  container_image: 'ContainerImage, WantContainer, WantDockerImage / WantSIF / WantSandboxImage',
  docker_image: 'DockerImage',
  batch_name: 'JobBatchName',
  description: 'JobDescription',
  cron_minute: 'CronMinute',
  cron_hour: 'CronHour',
  cron_day_of_month: 'CronDayOfMonth',
  cron_month: 'CronMonth',
  cron_day_of_week: 'CronDayOfWeek',
  cron_window: 'DeferralWindow',
  cron_prep_time: 'DeferralPrepTime',
  deferral_time: 'DeferralTime',
  deferral_window: 'DeferralWindow',
  deferral_prep_time: 'DeferralPrepTime',
  on_exit_remove: 'OnExitRemove',
  on_exit_hold: 'OnExitHold',
  on_exit_hold_reason: 'OnExitHoldReason',
  on_exit_hold_subcode: 'OnExitHoldSubCode',
  periodic_hold: 'PeriodicHold',
  periodic_hold_reason: 'PeriodicHoldReason',
  periodic_hold_subcode: 'PeriodicHoldSubCode',
  periodic_release: 'PeriodicRelease',
  periodic_remove: 'PeriodicRemove',
  max_retries: 'JobMaxRetries (and the OnExitRemove that condor_submit builds for retries)',
  success_exit_code: 'JobSuccessExitCode',
  retry_until: 'OnExitRemove',
  leave_in_queue: 'LeaveJobInQueue',
  hold: 'JobStatus 5, HoldReason, HoldReasonCode 15',
  priority: 'JobPrio',
  notification: 'JobNotification (Never 0, Always 1, Complete 2, Error 3, Start 4)',
  notify_user: 'NotifyUser',
  requirements: 'Requirements',
  rank: 'Rank',
  accounting_group: 'AcctGroup, AccountingGroup (<group>.<user>), AcctGroupUser',
  accounting_group_user: 'AcctGroupUser',
  kill_sig: 'KillSig',
  remove_kill_sig: 'RemoveKillSig',
  kill_sig_timeout: 'KillSigTimeout',
  job_max_vacate_time: 'JobMaxVacateTime',
  max_job_retirement_time: 'MaxJobRetirementTime',
  allowed_execute_duration: 'AllowedExecuteDuration',
  allowed_job_duration: 'AllowedJobDuration',
  want_graceful_removal: 'WantGracefulRemoval',
  stream_output: 'StreamOut',
  stream_error: 'StreamErr',
  encrypt_execute_directory: 'EncryptExecuteDirectory',
  job_ad_information_attrs: 'JobAdInformationAttrs',
};

/** Real condor_submit commands this stand-in refuses by name rather than calling them typos. */
const UNSUPPORTED_COMMANDS = new Set([
  'env', 'environment2', 'arguments2', 'allow_arguments_v1', 'allow_environment_v1', 'shell',
  'grid_resource', 'machine_count', 'vm_type', 'java_vm_args', 'jar_files', 'max_materialize',
  'max_idle', 'transfer_input', 'transfer_output', 'transfer_error', 'stream_input', 'stdin',
  'stdout', 'stderr', 'nice_user', 'concurrency_limits', 'concurrency_limits_expr',
  'use_oauth_services', 'x509userproxy', 'use_x509userproxy', 'use_scitokens', 'scitokens_file',
  'output_destination', 'checkpoint_exit_code', 'transfer_checkpoint_files', 'docker_network_type',
  'docker_pull_policy', 'container_service_names', 'transfer_container', 'container_target_dir',
  'mount_under_scratch', 'request_gpu_memory', 'require_gpus', 'gpus_minimum_capability',
  'gpus_maximum_capability', 'gpus_minimum_memory', 'retry_request_memory', 'retry_request_disk',
  'hold_kill_sig', 'iwd', 'job_iwd', 'skip_filechecks', 'periodic_vacate', 'next_job_start_delay',
  'keep_claim_idle', 'job_lease_duration', 'coresize', 'image_size', 'email_attributes',
  'encrypt_input_files', 'encrypt_output_files', 'dont_encrypt_input_files',
  'dont_encrypt_output_files', 'public_input_files', 'output_directory', 'erase_output_and_error_on_restart',
  'log_xml', 'manifest', 'manifest_dir', 'run_as_owner', 'load_profile', 'remote_initialdir',
  'stack_size', 'starter_debug', 'starter_log', 'submit_event_notes', 'ulog_execute_attrs',
  'job_machine_attrs', 'job_machine_attrs_history_length', 'want_job_networking', 'noop_job',
  'noop_job_exit_code', 'noop_job_exit_signal', 'primary_unix_group', 'match_list_length',
  'gs_access_key_id_file', 'gs_secret_access_key_file', 'cuda_version', 'skip_if_dataflow',
  'checkpoint_destination', 'accounting_group_user_name', 'project_name', 'jobset',
]);

/** Built-in macros; defining one of them in the description is an error. */
const BUILTIN_MACROS = new Set([
  'cluster', 'clusterid', 'process', 'procid', 'jobid', 'step', 'itemindex', 'row', 'item', 'node',
  'dollar', 'dollardollar',
]);

const MAX_PROCS = 10000;
const UNIVERSES: Record<string, number> = { vanilla: 5, scheduler: 7, local: 12, container: 5, docker: 5 };
const UNSUPPORTED_UNIVERSES = new Set(['standard', 'grid', 'java', 'vm', 'parallel', 'mpi', 'globus']);
const NOTIFICATIONS: Record<string, number> = { never: 0, always: 1, complete: 2, error: 3, start: 4 };
const SIGNALS: Record<string, number> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8,
  SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15,
  SIGCHLD: 17, SIGCONT: 18, SIGSTOP: 19, SIGTSTP: 20, SIGTTIN: 21, SIGTTOU: 22,
};
const HELD = 5;
const IDLE = 1;
const HOLD_CODE_SUBMITTED_ON_HOLD = 15;
const DEFAULT_JOB_MAX_RETRIES = 2;
const JOB_DEFERRAL_WINDOW_DEFAULT = 0;
const JOB_DEFERRAL_PREP_TIME_DEFAULT = 300;

// ---------------------------------------------------------------------------------------------
// Reading lines and statements

type SourceLine = { no: number; text: string };
type Definition = { raw: string; line: SourceLine };

type Parsed = {
  /** Every assignment, by lower-cased name (custom attributes as `my.<name>`). */
  table: Map<string, Definition>;
  /** Commands given, by lower-cased name. */
  commands: Map<string, Definition>;
  /** Custom attributes: attribute name (as first written) → lower-cased table key. */
  custom: Map<string, string>;
  queue: { count: number; line: SourceLine };
};

function fail(reason: string, line?: SourceLine, where?: string): never {
  throw new SubmitDescriptionError(reason, line?.no, line?.text, where);
}

function readLines(text: string): SourceLine[] {
  const physical = text.split('\n');
  const lines: SourceLine[] = [];
  let i = 0;
  while (i < physical.length) {
    const no = i + 1;
    let cur = physical[i]!.trim();
    i++;
    if (cur.startsWith('#')) {
      lines.push({ no, text: cur });
      continue; // a comment never continues, even when it ends in a backslash
    }
    let more = cur.endsWith('\\');
    if (more) cur = cur.slice(0, -1);
    while (more) {
      if (i >= physical.length) {
        fail('the line ends with a backslash but the description ends there', { no, text: `${cur}\\` });
      }
      const next = physical[i]!.trim();
      i++;
      if (next.startsWith('#')) {
        if (next.endsWith('\\')) continue; // a commented-out line inside the continuation
        fail(
          `a comment line (line ${i}) ends this continued line; end it with a backslash too, or move the comment`,
          { no, text: cur },
        );
      }
      more = next.endsWith('\\');
      cur += more ? next.slice(0, -1) : next;
    }
    lines.push({ no, text: cur });
  }
  return lines;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const CONTROL_KEYWORDS = new Set(['if', 'elif', 'else', 'endif', 'include', 'use', 'error', 'warning']);

function parseStatements(text: string, macros: Record<string, string> = {}): Parsed {
  const lines = readLines(text);
  const referenced = referencedMacros(lines);
  const table = new Map<string, Definition>();
  const commands = new Map<string, Definition>();
  const custom = new Map<string, string>();
  let queue: Parsed['queue'] | undefined;

  for (const [name, value] of Object.entries(macros)) {
    const line = { no: 0, text: `${name} = ${value}` };
    const lower = name.toLowerCase();
    if (!IDENTIFIER.test(name)) fail(`illegal macro name '${name}' given with the description`);
    if (BUILTIN_MACROS.has(lower) || lower === 'queue') fail(`'${name}' is a built-in macro and cannot be defined`);
    if (UNSUPPORTED_COMMANDS.has(lower)) fail(`submit command '${name}' (given with the description) is not supported by this stand-in`);
    table.set(lower, { raw: value, line });
    if (lower in SUBMIT_COMMANDS) commands.set(lower, { raw: value, line });
  }

  for (const line of lines) {
    const t = line.text;
    if (t === '' || t.startsWith('#')) continue;
    if (queue) {
      fail(
        `text after the queue statement on line ${queue.line.no}; this stand-in takes one queue statement, at the end`,
        line,
      );
    }
    const firstWord = (/^[^\s=:]*/.exec(t)?.[0] ?? '').toLowerCase();
    if (firstWord === 'queue') {
      queue = { count: parseQueue(t.slice(5).trim(), line), line };
      continue;
    }
    const eq = t.indexOf('=');
    const key = eq < 0 ? '' : t.slice(0, eq).trim();
    const validKey = key !== '' && (IDENTIFIER.test(key) || /^\+[A-Za-z_]/.test(key) || /^my\./i.test(key));
    if (!validKey) {
      if (CONTROL_KEYWORDS.has(firstWord)) fail(`'${firstWord}' statements are not supported by this stand-in`, line);
      if (/\+$/.test(key)) fail(`the '+=' operator is not supported by this stand-in; write the whole value`, line);
      if (/@$/.test(key)) fail(`multi-line '@=' values are not supported by this stand-in`, line);
      if (eq < 0) fail(`not a submit command: expected 'name = value', a '#' comment or a queue statement`, line);
      fail(`illegal submit command name '${key}'`, line);
    }
    const value = t.slice(eq + 1).trim();
    let lower: string;
    if (key.startsWith('+') || /^my\./i.test(key)) {
      const name = key.startsWith('+') ? key.slice(1) : key.slice(3);
      if (!IDENTIFIER.test(name)) fail(`illegal job attribute name '${name}'`, line);
      if (/^(clusterid|procid)$/i.test(name)) fail(`${name} is set by the schedd and cannot be given`, line);
      lower = `my.${name.toLowerCase()}`;
      if (![...custom.values()].includes(lower)) custom.set(name, lower);
    } else {
      lower = key.toLowerCase();
      if (BUILTIN_MACROS.has(lower)) fail(`'${key}' is a built-in macro and cannot be defined`, line);
      if (lower === 'queue') fail(`'queue' is a statement, not a command`, line);
      if (UNSUPPORTED_COMMANDS.has(lower)) fail(`submit command '${key}' is not supported by this stand-in`, line);
      if (lower in SUBMIT_COMMANDS) {
        if ((lower === 'args' && commands.has('arguments')) || (lower === 'arguments' && commands.has('args'))) {
          fail(`give either 'arguments' or 'args', not both`, line);
        }
        commands.set(lower, { raw: value, line }); // replaced below, once self-references are resolved
      } else if (!referenced.has(lower)) {
        const hint = closestCommand(lower);
        fail(`unknown submit command '${key}'; is it a typo?${hint ? ` (did you mean '${hint}'?)` : ''}`, line);
      }
    }
    const previous = table.get(lower);
    const raw = substituteSelf(value, lower, previous?.raw ?? '', line);
    const def = { raw, line };
    table.set(lower, def);
    if (commands.has(lower)) commands.set(lower, def);
  }
  if (!queue) {
    const last = lines.filter((l) => l.text !== '').at(-1) ?? { no: 1, text: '' };
    fail('the description ends here without a queue statement, so condor_submit would submit no jobs', last, 'at');
  }
  return { table, commands, custom, queue };
}

function parseQueue(rest: string, line: SourceLine): number {
  if (rest === '') return 1;
  if (!/^\d+$/.test(rest)) {
    fail(`this stand-in does not support 'queue ${rest}': only 'queue' and 'queue <N>' with a whole number`, line);
  }
  const n = Number(rest);
  if (n === 0) fail('queue 0 submits no jobs', line);
  if (n > MAX_PROCS) fail(`queue ${n}: this stand-in queues at most ${MAX_PROCS} jobs per submission`, line);
  return n;
}

/** Names referenced as `$(name)` or `$(name:default)` outside comments, lower-cased. */
function referencedMacros(lines: SourceLine[]): Set<string> {
  const names = new Set<string>();
  for (const { text } of lines) {
    if (text.startsWith('#')) continue;
    for (const m of text.matchAll(/(?<!\$)\$\(([A-Za-z0-9_./]+)(?=[:)])/g)) names.add(m[1]!.toLowerCase());
  }
  return names;
}

function closestCommand(name: string): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const cmd of Object.keys(SUBMIT_COMMANDS)) {
    const d = editDistance(name, cmd);
    if (d < bestDistance) {
      best = cmd;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

// ---------------------------------------------------------------------------------------------
// Macros

type Piece =
  | { t: 'text'; s: string }
  | { t: 'macro'; name: string; dflt: string | undefined; src: string }
  | { t: 'env'; name: string; src: string };

function matchingParen(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === '(') depth++;
    else if (s[i] === ')' && --depth === 0) return i;
  }
  return -1;
}

function tokenize(raw: string, line: SourceLine): Piece[] {
  const pieces: Piece[] = [];
  let text = '';
  const flush = () => {
    if (text !== '') pieces.push({ t: 'text', s: text });
    text = '';
  };
  let i = 0;
  while (i < raw.length) {
    const c = raw[i]!;
    if (c !== '$') {
      text += c;
      i++;
      continue;
    }
    if (raw[i + 1] === '$') {
      // $$(attr): substituted at match time from the machine ad; kept verbatim
      const end = raw[i + 2] === '(' ? matchingParen(raw, i + 2) : i + 1;
      if (end < 0) fail(`unterminated '$$(' in '${raw}'`, line);
      text += raw.slice(i, end + 1);
      i = end + 1;
      continue;
    }
    if (raw[i + 1] === '(') {
      const end = matchingParen(raw, i + 1);
      if (end < 0) fail(`unterminated macro reference in '${raw}'`, line);
      const body = raw.slice(i + 2, end);
      const colon = body.indexOf(':');
      const name = colon < 0 ? body : body.slice(0, colon);
      if (!/^[A-Za-z0-9_./]+$/.test(name)) fail(`malformed macro reference '${raw.slice(i, end + 1)}'`, line);
      flush();
      pieces.push({ t: 'macro', name, dflt: colon < 0 ? undefined : body.slice(colon + 1), src: raw.slice(i, end + 1) });
      i = end + 1;
      continue;
    }
    const fn = /^\$([A-Za-z_][A-Za-z0-9_]*)\(/.exec(raw.slice(i));
    if (fn) {
      const open = i + fn[0].length - 1;
      const end = matchingParen(raw, open);
      if (end < 0) fail(`unterminated '$${fn[1]}(' in '${raw}'`, line);
      if (fn[1]!.toUpperCase() !== 'ENV') {
        fail(`macro function '$${fn[1]}(...)' is not supported by this stand-in (only $ENV(...))`, line);
      }
      const name = raw.slice(open + 1, end).trim();
      if (!IDENTIFIER.test(name)) fail(`malformed environment reference '${raw.slice(i, end + 1)}'`, line);
      flush();
      pieces.push({ t: 'env', name, src: raw.slice(i, end + 1) });
      i = end + 1;
      continue;
    }
    text += c;
    i++;
  }
  flush();
  return pieces;
}

/** `foo = $(foo) bar`: a definition that names itself extends the previous value, as in condor. */
function substituteSelf(raw: string, lowerName: string, previous: string, line: SourceLine): string {
  const pieces = tokenize(raw, line);
  if (!pieces.some((p) => p.t === 'macro' && p.name.toLowerCase() === lowerName)) return raw;
  return pieces
    .map((p) => {
      if (p.t === 'text') return p.s;
      if (p.t === 'macro' && p.name.toLowerCase() === lowerName) return previous !== '' ? previous : (p.dflt ?? '');
      return p.src;
    })
    .join('');
}

class Scope {
  constructor(
    private readonly table: Map<string, Definition>,
    private readonly builtins: Map<string, string>,
    private readonly env: Record<string, string>,
  ) {}

  expand(raw: string, line: SourceLine, stack: string[] = []): string {
    let out = '';
    for (const p of tokenize(raw, line)) {
      if (p.t === 'text') out += p.s;
      else if (p.t === 'env') out += Object.hasOwn(this.env, p.name) ? this.env[p.name] : '';
      else {
        const name = p.name.toLowerCase();
        const builtin = this.builtins.get(name);
        if (builtin !== undefined) {
          out += builtin;
          continue;
        }
        const def = this.table.get(name);
        if (def) {
          if (stack.includes(name)) fail(`macro '${p.name}' refers to itself (${[...stack, name].join(' -> ')})`, line);
          out += this.expand(def.raw, def.line, [...stack, name]);
        } else if (p.dflt !== undefined) {
          out += this.expand(p.dflt, line, stack);
        }
      }
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Building the job ads

const lit = (value: string | number | boolean): AttrValue => ({ kind: 'literal', value });
const expr = (text: string): AttrValue => ({ kind: 'expr', text });

/** Looks an attribute up the way ClassAds do: case-insensitively. */
export function lookupAttribute(ad: JobAttributes, name: string): AttrValue | undefined {
  const direct = ad.get(name);
  if (direct) return direct;
  const lower = name.toLowerCase();
  for (const [k, v] of ad) if (k.toLowerCase() === lower) return v;
  return undefined;
}

function setAttribute(ad: JobAttributes, name: string, value: AttrValue): void {
  const lower = name.toLowerCase();
  for (const k of ad.keys()) {
    if (k.toLowerCase() === lower) {
      ad.set(k, value);
      return;
    }
  }
  ad.set(name, value);
}

function deleteAttribute(ad: JobAttributes, name: string): void {
  const lower = name.toLowerCase();
  for (const k of [...ad.keys()]) if (k.toLowerCase() === lower) ad.delete(k);
}

/**
 * A light check that expression text can be a ClassAd expression: brackets balance and quotes
 * close. The module that evaluates expressions does the real parsing.
 */
function expressionProblem(text: string): string | undefined {
  if (text.trim() === '') return 'the expression is empty';
  const closers: Record<string, string> = { '(': ')', '[': ']', '{': '}' };
  const stack: string[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += text[j] === '\\' ? 2 : 1;
      if (j >= text.length) return `unterminated ${c === '"' ? 'string' : 'quoted name'}`;
      i = j;
    } else if (c in closers) stack.push(closers[c]!);
    else if (c === ')' || c === ']' || c === '}') {
      if (stack.pop() !== c) return `unbalanced '${c}'`;
    }
  }
  return stack.length > 0 ? `missing '${stack.at(-1)}'` : undefined;
}

function stripQuotes(s: string): string {
  const t = s.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1).trim() : t;
}

function parseBool(s: string): boolean | undefined {
  const t = s.trim().toLowerCase();
  if (t === 'true' || t === '1') return true;
  if (t === 'false' || t === '0') return false;
  return undefined;
}

/**
 * condor_submit's quantity rule (parse_int64_bytes): a number with an optional fraction and an
 * optional K/M/G/T unit (a trailing B tolerated), in `base` bytes, rounded up. Bare numbers are
 * already in `base` units. Undefined when the text is not a quantity.
 */
function parseQuantity(text: string, base: number): number | undefined {
  const m = /^(\d+)(?:\.(\d*))?\s*(?:([kmgtKMGT])[bB]?)?$/.exec(text.trim());
  if (!m) return undefined;
  const whole = Number(m[1]);
  const fraction = m[2] ? Number(`0.${m[2].slice(0, 3)}`) : 0;
  const unit = m[3]?.toUpperCase();
  const mult = unit === undefined ? base : 1024 ** (' KMGT'.indexOf(unit));
  return Math.floor(((whole + fraction) * mult + base - 1) / base);
}

const CRON_FIELDS: Record<string, [attr: string, min: number, max: number]> = {
  cron_minute: ['CronMinute', 0, 59],
  cron_hour: ['CronHour', 0, 23],
  cron_day_of_month: ['CronDayOfMonth', 1, 31],
  cron_month: ['CronMonth', 1, 12],
  cron_day_of_week: ['CronDayOfWeek', 0, 7],
};

function cronProblem(value: string, min: number, max: number): string | undefined {
  for (const item of value.split(',')) {
    const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(item.trim());
    if (!m) return `'${item.trim()}' is not a cron value (*, N, N-M, with an optional /STEP)`;
    for (const n of [m[2], m[3]]) {
      if (n !== undefined && (Number(n) < min || Number(n) > max)) return `${n} is outside ${min}-${max}`;
    }
    if (m[4] !== undefined && Number(m[4]) === 0) return 'a step of 0';
  }
  return undefined;
}

type Got = { value: string; line: SourceLine };

/** Simple commands: one attribute each. */
const SIMPLE: Record<string, [attr: string, type: 'string' | 'stripped' | 'bool' | 'int' | 'expr' | 'path']> = {
  input: ['In', 'string'],
  output: ['Out', 'string'],
  error: ['Err', 'string'],
  log: ['UserLog', 'path'],
  dagman_log: ['DAGManNodesLog', 'path'],
  transfer_output_remaps: ['TransferOutputRemaps', 'stripped'],
  preserve_relative_paths: ['PreserveRelativePaths', 'bool'],
  max_transfer_input_mb: ['MaxTransferInputMB', 'expr'],
  max_transfer_output_mb: ['MaxTransferOutputMB', 'expr'],
  transfer_plugins: ['TransferPlugins', 'string'],
  copy_to_spool: ['CopyToSpool', 'bool'],
  aws_region: ['AWSRegion', 'string'],
  batch_name: ['JobBatchName', 'stripped'],
  description: ['JobDescription', 'string'],
  on_exit_hold_reason: ['OnExitHoldReason', 'expr'],
  on_exit_hold_subcode: ['OnExitHoldSubCode', 'expr'],
  periodic_hold_reason: ['PeriodicHoldReason', 'expr'],
  periodic_hold_subcode: ['PeriodicHoldSubCode', 'expr'],
  notify_user: ['NotifyUser', 'string'],
  requirements: ['Requirements', 'expr'],
  rank: ['Rank', 'expr'],
  kill_sig_timeout: ['KillSigTimeout', 'int'],
  job_max_vacate_time: ['JobMaxVacateTime', 'expr'],
  max_job_retirement_time: ['MaxJobRetirementTime', 'expr'],
  allowed_execute_duration: ['AllowedExecuteDuration', 'expr'],
  allowed_job_duration: ['AllowedJobDuration', 'expr'],
  want_graceful_removal: ['WantGracefulRemoval', 'expr'],
  stream_output: ['StreamOut', 'bool'],
  stream_error: ['StreamErr', 'bool'],
  encrypt_execute_directory: ['EncryptExecuteDirectory', 'bool'],
  job_ad_information_attrs: ['JobAdInformationAttrs', 'string'],
  priority: ['JobPrio', 'int'],
};

class ProcBuilder {
  readonly ad: JobAttributes = new Map();
  private readonly used = new Set<string>();
  private readonly scope: Scope;

  constructor(
    private readonly parsed: Parsed,
    private readonly ctx: SubmitContext,
    private readonly proc: number,
  ) {
    const c = String(ctx.clusterId);
    const p = String(proc);
    const builtins = new Map<string, string>([
      ['cluster', c], ['clusterid', c], ['process', p], ['procid', p], ['jobid', `${c}.${p}`],
      ['step', p], ['itemindex', '0'], ['row', '0'], ['item', ''], ['node', ''],
      ['dollar', '$'], ['dollardollar', '$$'],
    ]);
    this.scope = new Scope(parsed.table, builtins, ctx.env ?? {});
  }

  /** A command's expanded value; undefined when not given or empty after expansion. */
  get(cmd: string): Got | undefined {
    const def = this.parsed.commands.get(cmd);
    if (!def) return undefined;
    this.used.add(cmd);
    const value = this.scope.expand(def.raw, def.line, [cmd]).trim();
    return value === '' ? undefined : { value, line: def.line };
  }

  set(name: string, value: AttrValue): void {
    setAttribute(this.ad, name, value);
  }

  checkedExpr(g: Got, cmd: string): AttrValue {
    const problem = expressionProblem(g.value);
    if (problem) fail(`${cmd} = ${g.value} is not a valid expression: ${problem}`, g.line);
    return expr(g.value);
  }

  bool(g: Got, cmd: string): boolean {
    const b = parseBool(g.value);
    if (b === undefined) fail(`${cmd} = ${g.value} is invalid, it must be true or false`, g.line);
    return b;
  }

  int(g: Got, cmd: string): number {
    if (!/^[+-]?\d+$/.test(g.value)) fail(`${cmd} = ${g.value} is invalid, it must be an integer`, g.line);
    return Number(g.value);
  }

  /** An integer literal, or else a ClassAd expression. */
  intOrExpr(g: Got, cmd: string): AttrValue {
    return /^[+-]?\d+$/.test(g.value) ? lit(Number(g.value)) : this.checkedExpr(g, cmd);
  }

  build(): JobAttributes {
    const { ctx, proc } = this;
    const now = Math.floor((ctx.now ?? new Date()).getTime() / 1000);

    this.set('ClusterId', lit(ctx.clusterId));
    this.set('ProcId', lit(proc));

    const universe = this.universe();
    const iwd = this.iwd();
    this.set('Iwd', lit(iwd));
    this.set('Owner', ctx.owner === undefined ? expr('undefined') : lit(ctx.owner));
    this.set('QDate', lit(now));
    this.statusAndHold(now);
    this.set('NumHolds', lit(0));
    this.set('NumJobStarts', lit(0));
    this.set('NumJobCompletions', lit(0));
    this.set('NumRestarts', lit(0));
    this.set('NumSystemHolds', lit(0));

    this.executableAndContainer(universe);
    this.arguments();
    this.environment();
    this.transfers();
    this.requests();
    this.retriesAndExitPolicy();
    this.deferral();
    this.signals(universe);
    this.accounting();

    for (const [cmd, [attr, type]] of Object.entries(SIMPLE)) {
      const g = this.get(cmd);
      if (!g) continue;
      if (type === 'string') this.set(attr, lit(g.value));
      else if (type === 'stripped') this.set(attr, lit(stripQuotes(g.value)));
      else if (type === 'bool') this.set(attr, lit(this.bool(g, cmd)));
      else if (type === 'int') this.set(attr, lit(this.int(g, cmd)));
      else if (type === 'expr') this.set(attr, this.checkedExpr(g, cmd));
      else this.set(attr, lit(path.posix.resolve(iwd, g.value)));
    }

    const notification = this.get('notification');
    if (notification) {
      const n = NOTIFICATIONS[notification.value.toLowerCase()];
      if (n === undefined) fail(`notification must be Never, Always, Complete, Start or Error`, notification.line);
      this.set('JobNotification', lit(n));
    } else {
      this.set('JobNotification', lit(0));
    }
    for (const [cmd, attr] of [['periodic_hold', 'PeriodicHold'], ['periodic_release', 'PeriodicRelease'], ['periodic_remove', 'PeriodicRemove']] as const) {
      const g = this.get(cmd);
      this.set(attr, g ? this.checkedExpr(g, cmd) : lit(false));
    }
    // No default here: condor_submit's default depends on how the job is submitted (false
    // locally, a 10-day expression for remote/spooled jobs), which the schedd knows.
    const leave = this.get('leave_in_queue');
    if (leave) this.set('LeaveJobInQueue', this.checkedExpr(leave, 'leave_in_queue'));
    if (!lookupAttribute(this.ad, 'JobPrio')) this.set('JobPrio', lit(0));

    this.customAttributes();

    for (const cmd of this.parsed.commands.keys()) {
      if (!this.used.has(cmd)) throw new Error(`submit_description: command '${cmd}' was accepted but not applied`);
    }
    return this.ad;
  }

  private universe(): { number: number; container: boolean; docker: boolean; name: string } {
    const g = this.get('universe');
    const name = (g?.value ?? 'vanilla').toLowerCase();
    const number = UNIVERSES[name];
    if (number === undefined) {
      if (UNSUPPORTED_UNIVERSES.has(name)) fail(`the ${name} universe is not supported by this stand-in`, g?.line);
      fail(`unknown universe '${g?.value}'`, g?.line);
    }
    this.set('JobUniverse', lit(number));
    return { number, name, container: name === 'container', docker: name === 'docker' };
  }

  private iwd(): string {
    const g = this.get('initialdir');
    return g ? path.posix.resolve(this.ctx.iwd, g.value) : path.posix.resolve(this.ctx.iwd);
  }

  private statusAndHold(now: number): void {
    const hold = this.get('hold');
    if (hold && this.bool(hold, 'hold')) {
      this.set('JobStatus', lit(HELD));
      this.set('HoldReasonCode', lit(HOLD_CODE_SUBMITTED_ON_HOLD));
      this.set('HoldReason', lit("submitted on hold at user's request"));
    } else {
      this.set('JobStatus', lit(IDLE));
    }
    this.set('EnteredCurrentStatus', lit(now));
  }

  private executableAndContainer(u: { number: number; container: boolean; docker: boolean; name: string }): void {
    const containerImage = this.get('container_image');
    const dockerImage = this.get('docker_image');
    const exe = this.get('executable');
    const transferExe = this.get('transfer_executable');
    let isContainer = u.container;

    if (u.docker) {
      if (containerImage) fail('docker universe does not allow use of container_image', containerImage.line);
      if (!dockerImage) fail('docker jobs require a docker_image', this.parsed.queue.line, 'at Queue statement on');
      this.set('WantDocker', lit(true));
    } else if (containerImage || dockerImage) {
      if (u.number !== 5 && u.number !== 12) {
        fail(`container images are not supported in the ${u.name} universe`, (containerImage ?? dockerImage)!.line);
      }
      if (containerImage && dockerImage) fail('cannot declare both docker_image and container_image', containerImage.line);
      isContainer = true;
      if (dockerImage) this.set('WantDockerImage', lit(true));
    } else if (u.container) {
      fail('container jobs require a container_image or docker_image', this.parsed.queue.line, 'at Queue statement on');
    }
    if (isContainer) this.set('WantContainer', lit(true));
    if (dockerImage) this.set('DockerImage', lit(stripQuotes(dockerImage.value)));
    if (containerImage) {
      const image = stripQuotes(containerImage.value);
      if (/^(instance|library|shub):\/\//.test(image)) fail(`'${image}' is not a valid container image`, containerImage.line);
      this.set('ContainerImage', lit(image));
      if (image.startsWith('docker:')) this.set('WantDockerImage', lit(true));
      else if (image.endsWith('.sif')) this.set('WantSIF', lit(true));
      else this.set('WantSandboxImage', lit(true));
    }

    const transfer = transferExe ? this.bool(transferExe, 'transfer_executable') : undefined;
    if (transfer !== undefined) this.set('TransferExecutable', lit(transfer));
    if (!exe) {
      if (!isContainer && !u.docker) {
        fail(`no 'executable' was given`, this.parsed.queue.line, 'at Queue statement on');
      }
      return;
    }
    // condor_submit makes the executable absolute against its working directory (not
    // initialdir) unless it is not transferred.
    this.set('Cmd', lit(transfer === false ? exe.value : path.posix.resolve(this.ctx.iwd, exe.value)));
  }

  private arguments(): void {
    const g = this.get('arguments') ?? this.get('args');
    if (!g) {
      this.set('Arguments', lit(''));
      return;
    }
    let parsed: { argv: string[]; v2: boolean };
    try {
      parsed = parseArgumentsValue(g.value);
    } catch (err) {
      fail(`${(err as Error).message} The full arguments were: ${g.value}`, g.line);
    }
    if (parsed.v2) this.set('Arguments', lit(joinV2Raw(parsed.argv)));
    else this.set('Args', lit(parsed.argv.join(' ')));
  }

  private environment(): void {
    const g = this.get('environment');
    const getenv = this.get('getenv');
    const vars = new Map<string, string>();
    let wasV1 = false;
    if (g) {
      try {
        wasV1 = !isV2Quoted(g.value);
        for (const [k, v] of parseEnvironmentValue(g.value)) vars.set(k, v);
      } catch (err) {
        fail(`${(err as Error).message} The environment was: ${g.value}`, g.line);
      }
    }
    if (getenv) {
      const flag = parseBool(getenv.value);
      const patterns = flag === undefined ? getenv.value.split(/[,;\s]+/).filter((s) => s !== '') : [];
      const deny = patterns.filter((p) => p.startsWith('!')).map((p) => wildcard(p.slice(1)));
      const allow = patterns.filter((p) => !p.startsWith('!')).map(wildcard);
      if (flag !== false) {
        for (const [name, value] of Object.entries(this.ctx.env ?? {})) {
          if (vars.has(name) || value.includes('\n') || (wasV1 && value.includes(';'))) continue;
          if (deny.some((re) => re.test(name))) continue;
          if (allow.length > 0 && !allow.some((re) => re.test(name))) continue;
          vars.set(name, value);
        }
      }
    }
    const entries = [...vars].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k}=${v}`);
    this.set('Environment', lit(joinV2Raw(entries)));
  }

  private transfers(): void {
    const list = (cmd: string, attr: string): boolean => {
      const g = this.get(cmd);
      if (!g) return false;
      const items = stripQuotes(g.value).split(',').map((s) => s.trim()).filter((s) => s !== '');
      this.set(attr, lit(items.join(',')));
      return true;
    };
    const input = list('transfer_input_files', 'TransferInput');
    const output = list('transfer_output_files', 'TransferOutput');
    const should = this.get('should_transfer_files');
    const when = this.get('when_to_transfer_output');
    let stf: string | undefined;
    if (should) {
      stf = should.value.toUpperCase();
      if (!['YES', 'NO', 'IF_NEEDED'].includes(stf)) {
        fail(`invalid value (${should.value}) for should_transfer_files; use YES, NO, or IF_NEEDED`, should.line);
      }
      if (stf === 'NO' && (input || output)) {
        fail('you specified files to transfer but disabled should_transfer_files', should.line);
      }
      this.set('ShouldTransferFiles', lit(stf));
    }
    if (when) {
      const wtto = when.value.toUpperCase();
      if (!['ON_EXIT', 'ON_EXIT_OR_EVICT', 'ON_SUCCESS'].includes(wtto)) {
        fail(`invalid value (${when.value}) for when_to_transfer_output; use ON_EXIT, ON_EXIT_OR_EVICT or ON_SUCCESS`, when.line);
      }
      if (stf === 'NO') fail('when_to_transfer_output makes no sense with should_transfer_files = NO', when.line);
      if (stf === 'IF_NEEDED' && wtto === 'ON_EXIT_OR_EVICT') {
        fail('when_to_transfer_output = ON_EXIT_OR_EVICT needs should_transfer_files = YES', when.line);
      }
      this.set('WhenToTransferOutput', lit(wtto));
    }
    for (const [cmds, attr] of [
      [['aws_access_key_id_file', 's3_access_key_id_file'], 'EC2AccessKeyId'],
      [['aws_secret_access_key_file', 's3_secret_access_key_file'], 'EC2SecretAccessKey'],
    ] as const) {
      const given = cmds.map((c) => this.get(c)).filter((g) => g !== undefined);
      if (given.length > 1) fail(`give only one of ${cmds.join(' and ')}`, given[1]!.line);
      if (given[0]) this.set(attr, lit(given[0].value));
    }
  }

  private requests(): void {
    const cpus = this.get('request_cpus');
    if (cpus && cpus.value.toLowerCase() !== 'undefined') this.set('RequestCpus', this.intOrExpr(cpus, 'request_cpus'));
    const gpus = this.get('request_gpus');
    if (gpus && gpus.value.toLowerCase() !== 'undefined') this.set('RequestGPUs', this.intOrExpr(gpus, 'request_gpus'));
    for (const [cmd, attr, base, unitName] of [
      ['request_memory', 'RequestMemory', 1024 * 1024, 'megabytes'],
      ['request_disk', 'RequestDisk', 1024, 'kilobytes'],
    ] as const) {
      const g = this.get(cmd);
      if (!g || g.value.toLowerCase() === 'undefined') continue;
      const n = parseQuantity(g.value, base);
      if (n !== undefined) this.set(attr, lit(n));
      else if (/^[\d.]/.test(g.value)) {
        fail(`${cmd} = ${g.value} is not a quantity: a number of ${unitName}, or a number with a unit K, M, G or T (KB, MB, GB, TB)`, g.line);
      } else this.set(attr, this.checkedExpr(g, cmd));
    }
  }

  /** condor_submit's SetJobRetries: max_retries, success_exit_code and retry_until shape OnExitRemove. */
  private retriesAndExitPolicy(): void {
    const erc = this.get('on_exit_remove');
    const ehc = this.get('on_exit_hold');
    const maxRetries = this.get('max_retries');
    const successCode = this.get('success_exit_code');
    const retryUntil = this.get('retry_until');
    this.set('OnExitHold', ehc ? this.checkedExpr(ehc, 'on_exit_hold') : lit(false));
    if (!maxRetries && !successCode && !retryUntil) {
      this.set('OnExitRemove', erc ? this.checkedExpr(erc, 'on_exit_remove') : lit(true));
      return;
    }
    const retries = maxRetries ? this.int(maxRetries, 'max_retries') : DEFAULT_JOB_MAX_RETRIES;
    if (retries < 0) fail(`max_retries = ${retries} must not be negative`, maxRetries!.line);
    this.set('JobMaxRetries', lit(retries));
    let codeCheck = '0';
    if (successCode) {
      this.set('JobSuccessExitCode', lit(this.int(successCode, 'success_exit_code')));
      codeCheck = 'JobSuccessExitCode';
    }
    if (retryUntil) {
      this.checkedExpr(retryUntil, 'retry_until');
      codeCheck += /^[+-]?\d+$/.test(retryUntil.value)
        ? ` || ExitCode =?= ${Number(retryUntil.value)}`
        : ` || ${parenthesize(retryUntil.value)}`;
    }
    let onExitRemove = `NumJobCompletions > JobMaxRetries || ExitCode =?= ${codeCheck}`;
    if (erc) {
      this.checkedExpr(erc, 'on_exit_remove');
      onExitRemove += ` || ${parenthesize(erc.value)}`;
    }
    this.set('OnExitRemove', expr(onExitRemove));
  }

  private deferral(): void {
    let cron = false;
    for (const [cmd, [attr, min, max]] of Object.entries(CRON_FIELDS)) {
      const g = this.get(cmd);
      if (!g) continue;
      const problem = cronProblem(g.value, min, max);
      if (problem) fail(`${cmd} = ${g.value} is invalid: ${problem}`, g.line);
      this.set(attr, lit(g.value));
      cron = true;
    }
    const deferralTime = this.get('deferral_time');
    if (deferralTime) this.set('DeferralTime', this.nonNegative(deferralTime, 'deferral_time'));
    const pairs = [
      ['cron_window', 'deferral_window', 'DeferralWindow', JOB_DEFERRAL_WINDOW_DEFAULT],
      ['cron_prep_time', 'deferral_prep_time', 'DeferralPrepTime', JOB_DEFERRAL_PREP_TIME_DEFAULT],
    ] as const;
    for (const [cronCmd, deferralCmd, attr, dflt] of pairs) {
      const fromCron = this.get(cronCmd);
      const fromDeferral = this.get(deferralCmd);
      const g = fromCron ?? fromDeferral; // cron_* wins, as in condor_submit
      const cmd = fromCron ? cronCmd : deferralCmd;
      if (!cron && !deferralTime) {
        if (g) fail(`${cmd} has no effect without cron_* commands or deferral_time`, g.line);
        continue;
      }
      this.set(attr, g ? this.nonNegative(g, cmd) : lit(dflt));
    }
  }

  private nonNegative(g: Got, cmd: string): AttrValue {
    const v = this.intOrExpr(g, cmd);
    if (v.kind === 'literal' && (v.value as number) < 0) fail(`${cmd} = ${g.value} is invalid, must be a non-negative integer`, g.line);
    return v;
  }

  private signals(u: { number: number }): void {
    const signal = (cmd: string, attr: string, dflt?: string) => {
      const g = this.get(cmd);
      if (!g) {
        if (dflt) this.set(attr, lit(dflt));
        return;
      }
      let name: string | undefined;
      if (/^\d+$/.test(g.value)) name = Object.keys(SIGNALS).find((k) => SIGNALS[k] === Number(g.value));
      else if (g.value.toUpperCase() in SIGNALS) name = g.value.toUpperCase();
      if (!name) fail(`invalid signal ${g.value}`, g.line);
      this.set(attr, lit(name));
    };
    // condor_submit gives every universe but vanilla a KillSig of SIGTERM
    signal('kill_sig', 'KillSig', u.number === 5 ? undefined : 'SIGTERM');
    signal('remove_kill_sig', 'RemoveKillSig');
  }

  private accounting(): void {
    const group = this.get('accounting_group');
    const groupUser = this.get('accounting_group_user');
    if (!group && !groupUser) return;
    const user = groupUser?.value ?? this.ctx.owner;
    if (user === undefined) {
      fail('accounting_group needs accounting_group_user when the submission has no owner', group!.line);
    }
    for (const g of [group, groupUser]) {
      if (g && !/^[A-Za-z0-9_.@-]+$/.test(g.value)) fail(`invalid ${g === group ? 'accounting_group' : 'accounting_group_user'}: ${g.value}`, g.line);
    }
    this.set('AcctGroupUser', lit(user));
    if (group) {
      this.set('AcctGroup', lit(group.value));
      this.set('AccountingGroup', lit(`${group.value}.${user}`));
    } else {
      this.set('AccountingGroup', lit(user));
    }
  }

  private customAttributes(): void {
    for (const [name, key] of this.parsed.custom) {
      const def = this.parsed.table.get(key)!;
      const value = this.scope.expand(def.raw, def.line, [key]).trim();
      if (value === '') {
        this.set(name, expr('undefined'));
        continue;
      }
      const str = /^"((?:[^"\\]|\\.)*)"$/.exec(value);
      if (str) {
        this.set(name, lit(unescapeClassAdString(str[1]!)));
        continue;
      }
      const problem = expressionProblem(value);
      if (problem) fail(`${name} = ${value} is not a valid expression: ${problem}`, def.line);
      this.set(name, expr(value));
    }
  }
}

function parenthesize(e: string): string {
  const t = e.trim();
  if (/^[A-Za-z0-9_.]+$/.test(t)) return t;
  if (t.startsWith('(') && matchingParen(t, 0) === t.length - 1) return t;
  return `(${t})`;
}

function unescapeClassAdString(s: string): string {
  const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', '\\': '\\', '"': '"', "'": "'", '/': '/' };
  return s.replace(/\\(.)/g, (_, c: string) => map[c] ?? c);
}

function wildcard(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*');
  return new RegExp(`^${escaped}$`, 'i');
}

/**
 * Reads a submit description into one job ad per queued proc. Throws SubmitDescriptionError
 * for anything it does not understand; see the module comment for what that covers.
 */
export function parseSubmitDescription(text: string, ctx: SubmitContext): SubmitResult {
  if (!Number.isInteger(ctx.clusterId) || ctx.clusterId < 1) {
    throw new TypeError(`parseSubmitDescription: clusterId must be a positive integer, got ${ctx.clusterId}`);
  }
  if (!path.posix.isAbsolute(ctx.iwd)) {
    throw new TypeError(`parseSubmitDescription: iwd must be an absolute path, got "${ctx.iwd}"`);
  }
  const parsed = parseStatements(text, ctx.macros);
  const procs: JobAttributes[] = [];
  for (let proc = 0; proc < parsed.queue.count; proc++) {
    procs.push(new ProcBuilder(parsed, ctx, proc).build());
  }
  return { procs };
}

// ---------------------------------------------------------------------------------------------
// Argument and environment syntaxes (condor_arglist / env)

function isV2Quoted(s: string): boolean {
  return s.trimStart().startsWith('"');
}

/** The new syntax's outer double quotes off, `""` → `"`; anything after the closing quote is an error. */
function v2QuotedToRaw(s: string): string {
  const t = s.trim();
  let raw = '';
  let i = 1;
  for (;;) {
    if (i >= t.length) throw new Error('Unterminated double-quote.');
    if (t[i] === '"') {
      if (t[i + 1] === '"') {
        raw += '"';
        i += 2;
        continue;
      }
      break;
    }
    raw += t[i];
    i++;
  }
  if (i !== t.length - 1) {
    throw new Error(
      `Unexpected characters following double-quote. Did you forget to escape the double-quote by repeating it? Here is the quote and trailing characters: ${t.slice(i)}`,
    );
  }
  return raw;
}

/** Splits the stored new syntax: white space separates, single quotes group, `''` inside them is `'`. */
function splitV2Raw(raw: string): string[] {
  const args: string[] = [];
  let buf = '';
  let token = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === "'") {
      token = true;
      const start = i;
      i++;
      for (;;) {
        if (i >= raw.length) throw new Error(`Unbalanced quote starting here: ${raw.slice(start)}`);
        if (raw[i] === "'") {
          if (raw[i + 1] === "'") {
            buf += "'";
            i += 2;
            continue;
          }
          break;
        }
        buf += raw[i];
        i++;
      }
    } else if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (token) args.push(buf);
      buf = '';
      token = false;
    } else {
      buf += c;
      token = true;
    }
  }
  if (token) args.push(buf);
  return args;
}

/** The stored new syntax for argv: white space and `'` go inside single quotes, `'` doubled. */
function joinV2Raw(argv: string[]): string {
  let out = '';
  for (const arg of argv) {
    if (out !== '') out += ' ';
    if (arg === '') out += "''";
    for (const c of arg) {
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === "'") {
        if (out.endsWith("'")) out = out.slice(0, -1); // extend the quoted section just closed
        else out += "'";
        out += c === "'" ? "''" : c;
        out += "'";
      } else {
        out += c;
      }
    }
  }
  return out;
}

/** The old syntax: `\"` is a double quote, a bare `"` is an error, white space separates. */
function v1WackedToRaw(s: string): string {
  let raw = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '"') throw new Error(`Found illegal unescaped double-quote: ${s.slice(i)}`);
    if (s[i] === '\\' && s[i + 1] === '"') {
      raw += '"';
      i++;
    } else raw += s[i];
  }
  return raw;
}

function splitV1Raw(raw: string): string[] {
  return raw.split(/[ \t\r\n]+/).filter((s) => s !== '');
}

function parseArgumentsValue(value: string): { argv: string[]; v2: boolean } {
  if (isV2Quoted(value)) return { argv: splitV2Raw(v2QuotedToRaw(value)), v2: true };
  return { argv: splitV1Raw(v1WackedToRaw(value)), v2: false };
}

/**
 * argv from a job ad (its Arguments, else its Args) or from a submit-file `arguments` value in
 * either syntax (new syntax when it starts with a double quote).
 */
export function splitArguments(source: JobAttributes | string): string[] {
  try {
    if (typeof source === 'string') return parseArgumentsValue(source).argv;
    const v2 = lookupAttribute(source, 'Arguments');
    if (v2 !== undefined) return splitV2Raw(literalString(v2, 'Arguments'));
    const v1 = lookupAttribute(source, 'Args');
    if (v1 !== undefined) return splitV1Raw(literalString(v1, 'Args'));
    return [];
  } catch (err) {
    if (err instanceof SubmitDescriptionError) throw err;
    throw new SubmitDescriptionError(`invalid arguments: ${(err as Error).message}`);
  }
}

function literalString(v: AttrValue, name: string): string {
  if (v.kind !== 'literal' || typeof v.value !== 'string') throw new SubmitDescriptionError(`${name} is not a string`);
  return v.value;
}

function envEntry(entry: string): [string, string] {
  const eq = entry.indexOf('=');
  if (eq < 0) throw new Error(`Missing '=' after environment variable '${entry}'.`);
  if (eq === 0) throw new Error(`missing variable in '${entry}'.`);
  return [entry.slice(0, eq), entry.slice(eq + 1)];
}

/** The old environment syntax (Unix): `;` or newline separates, leading white space dropped. */
function parseEnvV1(raw: string, delim = ';'): [string, string][] {
  const body = raw.startsWith(delim) ? raw.slice(1) : raw;
  return body
    .split(new RegExp(`[\\n${delim.replace(/[\\\]^-]/g, '\\$&')}]`))
    .map((e) => e.replace(/^[ \t\r\n]+/, ''))
    .filter((e) => e !== '')
    .map(envEntry);
}

function parseEnvironmentValue(value: string): [string, string][] {
  if (isV2Quoted(value)) return splitV2Raw(v2QuotedToRaw(value)).map(envEntry);
  return parseEnvV1(value.trim());
}

/**
 * The environment as a record: from a job ad (Environment, else Env with EnvDelim) or from a
 * submit-file `environment` value in either syntax. Later entries win.
 */
export function parseEnvironment(source: JobAttributes | string): Record<string, string> {
  let entries: [string, string][];
  try {
    if (typeof source === 'string') entries = parseEnvironmentValue(source);
    else {
      const v2 = lookupAttribute(source, 'Environment');
      const v1 = lookupAttribute(source, 'Env');
      if (v2 !== undefined) entries = splitV2Raw(literalString(v2, 'Environment')).map(envEntry);
      else if (v1 !== undefined) {
        const delim = lookupAttribute(source, 'EnvDelim');
        entries = parseEnvV1(literalString(v1, 'Env'), delim ? literalString(delim, 'EnvDelim') : ';');
      } else entries = [];
    }
  } catch (err) {
    if (err instanceof SubmitDescriptionError) throw err;
    throw new SubmitDescriptionError(`invalid environment: ${(err as Error).message}`);
  }
  const env: Record<string, string> = {};
  for (const [k, v] of entries) env[k] = v;
  return env;
}
