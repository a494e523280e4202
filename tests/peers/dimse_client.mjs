// dimse_client.mjs - what the test modalities (mpps_scu.mjs, find_scu.mjs) share:
// the command line, reading a JSON dataset, and one association that sends one
// request and waits for its last response, failing loudly on anything else.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import dimse from 'dcmjs-dimse';

const { Client, log } = dimse;

/** Exit 2 with the reason on stderr: the Python wrappers report it. */
export function fail(name, reason) {
  process.stderr.write(`${name}: ${reason}\n`);
  process.exit(2);
}

/** The connection options every peer takes, plus its own `options`. */
export function parseCommandLine(name, options = {}) {
  let args;
  try {
    args = parseArgs({
      allowPositionals: true,
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '11112' },
        'calling-ae': { type: 'string', default: 'MODALITY1' },
        'called-ae': { type: 'string', default: 'BROKER' },
        timeout: { type: 'string', default: '10' },
        ...options,
      },
    });
  } catch (e) {
    fail(name, e.message);
  }
  const timeoutMs = Number(args.values.timeout) * 1000;
  if (!(timeoutMs > 0)) fail(name, `bad --timeout ${args.values.timeout}`);
  return { opts: args.values, positionals: args.positionals, timeoutMs };
}

/** A JSON object of DICOM keyword -> value (dcmjs "naturalized" form). */
export function readElements(name, path) {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    return fail(name, `cannot read dataset ${path}: ${e.message}`);
  }
}

/**
 * Send `request` on one association. `onResponse(response)` is called for every
 * response and returns true for the last one. Resolves once it came (and the
 * association was released or timed out); rejects with the reason if it never came.
 */
export function exchange(request, { opts, timeoutMs }, onResponse) {
  log.setLevel('silent'); // stdout is for the JSON lines
  return new Promise((resolve, reject) => {
    let done = false;
    const client = new Client();
    const timer = setTimeout(() => finish(`no last response within ${opts.timeout} s`), timeoutMs);
    // Responses printed but the release did not complete in time: still a result.
    function finish(reason) {
      clearTimeout(timer);
      if (done) resolve();
      else reject(new Error(reason));
    }
    request.on('response', (response) => {
      if (!done) done = onResponse(response);
    });
    client.addRequest(request);
    client.on('associationAccepted', (association) => {
      if (!association.getAcceptedPresentationContextFromRequest(request)) {
        const sopClass = request.getAffectedSopClassUid() || request.getRequestedSopClassUid();
        finish(`presentation context for SOP class ${sopClass} was not accepted`);
      }
    });
    client.on('associationRejected', (r) => {
      finish(`association rejected (result ${r.result}, source ${r.source}, reason ${r.reason})`);
    });
    client.on('networkError', (e) => finish(`network error: ${e.message}`));
    client.on('closed', () => finish('connection closed before the last response (association aborted?)'));
    client.send(opts.host, Number(opts.port), opts['calling-ae'], opts['called-ae'], {
      connectTimeout: timeoutMs,
      associationTimeout: timeoutMs,
      pduTimeout: timeoutMs,
    });
    // The Client does not forward A-ABORT; listen on its network for a clear reason.
    client.network?.on('abort', ({ source, reason }) => {
      finish(`association aborted (source ${source}, reason ${reason})`);
    });
  });
}

/** Run one exchange as the whole process: exit 0 once the last response came, else 2. */
export function exchangeOnce(name, request, command, onResponse) {
  exchange(request, command, onResponse).then(
    () => process.exit(0),
    (e) => fail(name, e.message)
  );
}
