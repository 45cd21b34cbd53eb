'use strict';
/**
 * The JavaScript engine harness: runs one user code inside the sandbox (Node.js
 * standard library only, CommonJS).
 *
 * The sandbox starts `node harness.js` ahead of need; it blocks reading the job
 * (JSON) from fd 3, loads the job's `source` as a CommonJS module, calls its
 * exported `Run(engine)` and writes the outcome (JSON, shape documented in
 * codeactions_core/execution/outcome.py) to fd 4, which it closes at once.
 *
 *     exports.Run = async function (engine) {
 *       engine.result.set({ hi: engine.params.get("name") }, 200, "json");
 *     };
 *
 * Code that exports no `Run` runs as a script: once its own asynchronous work
 * is done, its standard output is the result.
 *
 * Where ENGINE_API.md leaves a choice:
 * - `engine.params` is a read-only Map of the query parameters: `get(name)` answers
 *   `undefined` for a missing one, as Map does (`get(name, fallback)` to choose).
 * - `engine.header` is a read-only Map of header name to list of values; `get(name)`
 *   ignores letter case and answers the first value, "" when absent; `getAll(name)`.
 * - `engine.log.debug/info/error(...values)` joins its values with spaces, showing
 *   non-strings as console.log does; the methods also work detached from `engine.log`.
 * - `engine.result.set()` with no value (or `undefined`) answers "".
 * - What `Run` returns is ignored. The run ends one turn of the event loop after its
 *   promise settles (work it left pending is dropped); a promise nothing can settle
 *   any more fails the run at once. Rejections left unhandled fail the run.
 * - `process.exit()` inside `Run` fails the run; a script may exit with status 0.
 */

const fs = require('fs');
const path = require('path');
const util = require('util');
const vm = require('vm');
const { createRequire } = require('module');

const JOB_FD = 3;
const OUTCOME_FD = 4;
const MAX_LOG_LINES = 1000;
const MAX_LOG_CONTENT = 8000;
const ACTION_FILE = path.join(process.cwd(), 'action.js');
const MODULE_ARGUMENTS = ['exports', 'require', 'module', '__filename', '__dirname'];

// Kept before user code runs, so that code replacing them cannot break the protocol.
const { writeSync, closeSync, readFileSync } = fs;
const stringify = JSON.stringify;
const exitProcess = process.exit.bind(process);
const inspect = util.inspect;
const nextTurn = setImmediate;

// -- the engine API ---------------------------------------------------------------

/** Text without lone surrogates: what survives UTF-8 on the server's side. */
function wellFormed(text) {
  return typeof text.toWellFormed === 'function' ? text.toWellFormed() : text;
}

/** How a value reads in a log line: strings as they are, anything else as console.log shows it. */
function describe(value) {
  return typeof value === 'string' ? value : inspect(value, { depth: 4, breakLength: Infinity });
}

/** At most `limit` UTF-16 units, never cutting a surrogate pair in half. */
function cut(text, limit) {
  if (text.length <= limit) return text;
  const code = text.charCodeAt(limit - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? limit - 1 : limit);
}

/** A read-only Map: `get(name, fallback)`, `has`, iteration in order, `size`, JSON and console output. */
class ReadOnlyMap {
  #entries;

  constructor(entries) {
    this.#entries = entries;
    this.get = this.get.bind(this);
  }

  get(name, fallback = undefined) {
    return this.#entries.has(name) ? this.#entries.get(name) : fallback;
  }

  has(name) { return this.#entries.has(name); }
  keys() { return this.#entries.keys(); }
  values() { return this.#entries.values(); }
  entries() { return this.#entries.entries(); }
  forEach(callback, thisArg) {
    this.#entries.forEach((value, name) => callback.call(thisArg, value, name, this));
  }
  get size() { return this.#entries.size; }
  [Symbol.iterator]() { return this.#entries.entries(); }
  toJSON() { return Object.fromEntries(this.#entries); }

  [util.inspect.custom](depth, options) {
    return `${this.constructor.name} ${inspect(this.toJSON(), options)}`;
  }
}

/** Query parameters: `get` answers `undefined` (or `fallback`) for a missing one, like Map. */
class Params extends ReadOnlyMap {
  constructor(values) {
    super(new Map(Object.entries(values || {})));
  }
}

/** Request headers, name to list of values: `get` gives the first value of a header
 * in any letter case, "" when absent. */
class Header extends ReadOnlyMap {
  #byLower = new Map();

  constructor(headers) {
    const byName = new Map();
    for (const [name, raw] of Object.entries(headers || {})) {
      byName.set(name, (Array.isArray(raw) ? raw : [raw]).map(String));
    }
    super(byName);
    for (const [name, values] of byName) {
      const lower = name.toLowerCase();
      this.#byLower.set(lower, [...(this.#byLower.get(lower) || []), ...values]);
    }
  }

  get(name, fallback = '') {
    const values = this.getAll(name);
    return values.length ? values[0] : fallback;
  }

  /** Every value of a header (any letter case), in order; [] when absent. */
  getAll(name) { return [...(this.#byLower.get(String(name).toLowerCase()) || [])]; }
  has(name) { return this.#byLower.has(String(name).toLowerCase()); }
}

/** `debug`, `info` and `error` lines, stored with the run; the methods work detached too. */
class Log {
  constructor() {
    this.lines = [];
    this.dropped = 0;
    this.debug = (...values) => this.#add('debug', values);
    this.info = (...values) => this.#add('info', values);
    this.error = (...values) => this.#add('error', values);
  }

  #add(type, values) {
    if (this.lines.length >= MAX_LOG_LINES) {
      this.dropped += 1;
      return;
    }
    this.lines.push([type, wellFormed(cut(values.map(describe).join(' '), MAX_LOG_CONTENT))]);
  }
}

/** What the run answers; `set` again replaces the earlier value. A Buffer, typed array or
 * ArrayBuffer is a file to serve (base64 across the wire); `headers` (an object, Map or
 * Headers of name to a value or an array of values) are response headers the server checks. */
class Result {
  constructor() {
    this.value = null;
    this.statusCode = 200;
    this.contentType = 'text';
    this.headers = {};
    this.encoding = null;
    this.set = (value = '', statusCode = 200, contentType = 'text', headers = undefined) => {
      const bytes = binary(value);
      this.value = bytes === null ? encode(value) : bytes.toString('base64');
      this.encoding = bytes === null ? null : 'base64';
      this.statusCode = typeof statusCode === 'number' ? statusCode : String(statusCode);
      this.contentType = String(contentType);
      this.headers = responseHeaders(headers);
    };
  }
}

/** The bytes of a binary value (Buffer, typed array, DataView, ArrayBuffer); null for others. */
function binary(value) {
  if (Buffer.isBuffer(value)) return value;
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  return null;
}

/** Response headers as the outcome carries them: name to an array of strings. */
function responseHeaders(headers) {
  if (headers === undefined || headers === null) return {};
  if (typeof headers !== 'object') {
    throw new TypeError(`headers must be an object of name to value(s), not ${typeof headers}`);
  }
  const entries = typeof headers.entries === 'function' && !Array.isArray(headers)
    ? [...headers.entries()] : Object.entries(headers);
  const out = {};
  for (const [name, value] of entries) {
    const values = Array.isArray(value) ? value.map(String) : [String(value)];
    out[String(name)] = [...(out[String(name)] || []), ...values];
  }
  return out;
}

/** The secrets of the code's project: a read-only Map, `get(name)` undefined when unknown. */
class Secrets extends ReadOnlyMap {
  constructor(values) {
    super(new Map(Object.entries(values || {})));
  }
}

/** A result value as text: strings as they are, anything else as JSON, else String(value). */
function encode(value) {
  if (typeof value === 'string') return value;
  let text;
  try {
    text = stringify(value);
  } catch (error) {
    text = undefined;  // circular structures, BigInt
  }
  return typeof text === 'string' ? text : String(value);
}

/** What `Run(engine)` receives. */
class Engine {
  constructor(job) {
    this.params = new Params(job.params);
    this.body = typeof job.body === 'string' ? job.body : '';
    this.header = new Header(job.headers);
    this.log = new Log();
    this.result = new Result();
    this.secrets = new Secrets(job.secrets);
    this.request = { params: this.params, body: this.body, header: this.header, log: this.log };
  }
}

// -- one run ----------------------------------------------------------------------

/** The stack trace from the user's code up: Node's and the harness's frames below it dropped. */
function errorText(error) {
  if (!(error instanceof Error) || typeof error.stack !== 'string') {
    return `Uncaught ${inspect(error)}`;
  }
  const lines = error.stack.split('\n');
  const isFrame = (line) => /^\s+at /.test(line);
  const last = lines.findLastIndex((line) => isFrame(line) && line.includes(ACTION_FILE));
  if (last >= 0) return lines.slice(0, last + 1).join('\n');
  // Not raised in the user's code (e.g. a syntax error): keep what is neither the harness nor Node's inside.
  const foreign = (line) => [__filename, 'node:internal/', 'node:vm:'].some((place) => line.includes(place));
  return lines.filter((line) => !isFrame(line) || !foreign(line)).join('\n');
}

/** Load `source` as a CommonJS module; its exports. Throws what the module throws. */
function loadModule(source) {
  const module = { exports: {}, filename: ACTION_FILE, id: '.', loaded: false };
  const body = vm.compileFunction(source, MODULE_ARGUMENTS, { filename: ACTION_FILE });
  const require = createRequire(ACTION_FILE);
  require.main = module;  // `require.main === module`: the code is what runs
  module.require = require;
  body.call(module.exports, module.exports, require, module, ACTION_FILE, path.dirname(ACTION_FILE));
  module.loaded = true;
  return module.exports;
}

function entryOf(exports) {
  return exports !== null && exports !== undefined && typeof exports.Run === 'function' ? exports.Run : null;
}

class Runner {
  constructor(job) {
    this.job = job;
    this.engine = new Engine(job);
    this.hasRun = false;
    this.finished = false;
  }

  /** Run the code; the outcome is written when it ends, whichever way. */
  start() {
    process.on('uncaughtException', (error) => this.fail(error));
    process.on('unhandledRejection', (reason) => this.fail(reason));
    process.on('exit', (code) => this.exited(code));
    let exports;
    try {
      exports = loadModule(typeof this.job.source === 'string' ? this.job.source : '');
    } catch (error) {
      this.fail(error);
      return;
    }
    const entry = entryOf(exports);
    if (entry === null) {
      // A script: done when nothing is left for it to wait for.
      process.once('beforeExit', () => this.succeed());
      return;
    }
    this.hasRun = true;
    process.once('beforeExit', () => {
      this.failWith('Run never finished: nothing is left that could settle its promise');
    });
    // Success waits one turn of the event loop, for rejections Run left unhandled to be reported.
    (async () => entry.call(exports, this.engine))().then(
      () => nextTurn(() => this.succeed()),
      (error) => this.fail(error),
    );
  }

  succeed() {
    const result = this.engine.result;
    this.finish(this.hasRun
      ? { ok: true, result: result.value === null ? '' : result.value,
          status_code: result.statusCode, content_type: result.contentType,
          headers: result.headers, ...(result.encoding ? { result_encoding: result.encoding } : {}) }
      : { ok: true });
  }

  fail(error) {
    let text;
    try {
      text = errorText(error);
    } catch (failure) {
      text = 'Uncaught exception (it could not be described)';
    }
    this.failWith(text);
  }

  /** The run failed for `text`, which is logged as an error line too. */
  failWith(text) {
    this.engine.log.error(text);
    this.finish({ ok: false, error: text });
  }

  /** The process is exiting without an outcome: the code called process.exit(). */
  exited(code) {
    if (this.finished) return;
    if (!this.hasRun && !code) {
      this.succeed();
    } else {
      this.failWith(`the code called process.exit(${code})${this.hasRun ? ' before Run finished' : ''}`);
    }
  }

  finish(fields) {
    if (this.finished) return;
    this.finished = true;
    const log = this.engine.log;
    const outcome = {
      ok: false, has_run: this.hasRun, result: null, status_code: null, content_type: null,
      logs: log.lines, logs_dropped: log.dropped, error: null, ...fields,
    };
    if (typeof outcome.result === 'string') outcome.result = wellFormed(outcome.result);
    if (typeof outcome.error === 'string') outcome.error = wellFormed(outcome.error);
    writeOutcome(outcome);
    exitProcess(0);
  }
}

function writeOutcome(outcome) {
  const data = Buffer.from(stringify(outcome));
  let written = 0;
  try {
    while (written < data.length) written += writeSync(OUTCOME_FD, data, written);
    closeSync(OUTCOME_FD);  // the server answers now, not once this process has exited
  } catch (error) {
    // The server went away (e.g. the run was killed): nobody is left to tell.
  }
}

const WARM_UP_JOB = {
  source: 'exports.Run = (e) => { e.log.info(e.params.get("a")); '
    + 'e.result.set({ b: e.header.get("x") }, 200, "json"); };',
  params: { a: '1' },
  headers: { X: ['y'] },
};

/** A dummy run while the process waits for its job: V8 compiles the harness's paths now, not in the run. */
function warmUp() {
  const engine = new Engine(WARM_UP_JOB);
  const exports = loadModule(WARM_UP_JOB.source);
  entryOf(exports).call(exports, engine);
  stringify({ logs: engine.log.lines, result: engine.result.value });
}

function readJob() {
  const job = JSON.parse(readFileSync(JOB_FD, 'utf8'));
  closeSync(JOB_FD);
  return job;
}

warmUp();
new Runner(readJob()).start();
