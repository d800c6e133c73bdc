"use strict";
exports.id = 75;
exports.ids = [75];
exports.modules = {

/***/ 7132:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   K: () => (/* binding */ excerpt),
/* harmony export */   x: () => (/* binding */ probeHttp)
/* harmony export */ });
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(3024);
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__webpack_require__.n(node_fs__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var node_http__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(7067);
/* harmony import */ var node_http__WEBPACK_IMPORTED_MODULE_1___default = /*#__PURE__*/__webpack_require__.n(node_http__WEBPACK_IMPORTED_MODULE_1__);
/* harmony import */ var node_https__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(4708);
/* harmony import */ var node_https__WEBPACK_IMPORTED_MODULE_2___default = /*#__PURE__*/__webpack_require__.n(node_https__WEBPACK_IMPORTED_MODULE_2__);
/* harmony import */ var _util_url__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(7997);




const EXCERPT = 200;
const MAX_BODY = 256 * 1024;
/**
 * A short, one-line excerpt of a body or an output for an error message. Redaction comes first: cutting first
 * would leave the prefix of a secret that straddles the cut, which the redactor no longer recognises.
 */
function excerpt(s, redact) {
    const flat = redact(s).replace(/\s+/g, ' ').trim();
    return flat.length > EXCERPT ? `${flat.slice(0, EXCERPT)}… (${s.length} bytes)` : flat;
}
function jsonPath(value, p) {
    return p.split('.').reduce((v, k) => {
        if (v === null || typeof v !== 'object')
            return undefined;
        return Array.isArray(v) && /^\d+$/.test(k) ? v[Number(k)] : v[k];
    }, value);
}
const caCache = new Map();
const probeError = (code, message) => Object.assign(new Error(message), { code });
/**
 * One request with a hard limit on the whole exchange (connect, headers and body). Node's `timeout` option only
 * fires on an idle socket, so a server trickling a byte every 100 ms would never trip it; an AbortSignal timer
 * does. Past MAX_BODY the request is destroyed rather than drained, so an endless body cannot hold the probe.
 */
function request(check, url, o) {
    const mod = url.protocol === 'https:' ? node_https__WEBPACK_IMPORTED_MODULE_2__ : node_http__WEBPACK_IMPORTED_MODULE_1__;
    let ca;
    if (check.caFile) {
        ca = caCache.get(check.caFile) ?? node_fs__WEBPACK_IMPORTED_MODULE_0__.readFileSync(check.caFile, 'utf8');
        caCache.set(check.caFile, ca);
    }
    const started = performance.now();
    return new Promise((resolve, reject) => {
        let settled = false;
        // A plain timer, not AbortSignal.timeout/any: a combined signal nobody else references can be collected
        // before it fires (seen here as a probe that never ended under load), and a timer cannot.
        const timer = setTimeout(() => fail(probeError('TIMEOUT', `no complete answer within ${o.timeoutMs}ms`)), o.timeoutMs);
        const settle = (fn) => {
            if (settled)
                return;
            settled = true;
            clearTimeout(timer);
            o.signal.removeEventListener('abort', onAbort);
            fn();
        };
        const fail = (err) => settle(() => (req.destroy(), reject(err)));
        const onAbort = () => fail(probeError('CANCELLED', 'cancelled'));
        const req = mod.request(url, { method: check.method, headers: check.headers, ca }, (res) => {
            const chunks = [];
            let size = 0;
            const answer = (truncated) => settle(() => {
                if (truncated)
                    req.destroy();
                resolve({
                    status: res.statusCode ?? 0,
                    headers: res.headers,
                    body: Buffer.concat(chunks).toString('utf8'),
                    truncated,
                    ms: performance.now() - started,
                });
            });
            res.on('data', (d) => {
                if (settled)
                    return;
                if (size + d.length > MAX_BODY) {
                    chunks.push(d.subarray(0, MAX_BODY - size));
                    size = MAX_BODY;
                    return answer(true);
                }
                chunks.push(d);
                size += d.length;
            });
            res.on('end', () => answer(false));
            res.on('error', fail);
            res.on('close', () => {
                if (!res.complete)
                    fail(probeError('ECONNRESET', 'connection closed before the body was complete'));
            });
        });
        req.on('error', fail);
        if (o.signal.aborted)
            onAbort();
        else
            o.signal.addEventListener('abort', onAbort, { once: true });
        req.end();
    });
}
/** One HTTP(S) probe: status, body text/regex, JSON fields, response time and the release marker. */
async function probeHttp(check, target, 
/** The release the marker must name; undefined: not known (an old version), so the marker is not checked. */
release, o) {
    // A URL may carry user:password@; the report only ever names the URL without it.
    const what = `${check.method} ${(0,_util_url__WEBPACK_IMPORTED_MODULE_3__/* .stripUserinfo */ ._)(target)}`;
    let url;
    try {
        url = new URL(target);
    }
    catch {
        return { ok: false, detail: `${what}: not a valid URL` };
    }
    let a;
    try {
        a = await request(check, url, o);
    }
    catch (err) {
        const e = err;
        const why = e.code === 'TIMEOUT' || e.code === 'CANCELLED' || !e.code ? e.message : e.code;
        return { ok: false, detail: `${what}: ${(0,_util_url__WEBPACK_IMPORTED_MODULE_3__/* .stripUserinfo */ ._)(why)}` };
    }
    const body = (text) => excerpt(text, o.redact) + (a.truncated ? ` (only the first ${MAX_BODY} bytes were read)` : '');
    const x = check.expect;
    const statuses = x.status ?? [200];
    if (!statuses.includes(a.status))
        return {
            ok: false,
            detail: `${what}: expected status ${statuses.join('|')}, got ${a.status}: ${body(a.body)}`,
        };
    if (x.maxResponseTimeMs !== undefined && a.ms > x.maxResponseTimeMs) {
        return {
            ok: false,
            detail: `${what}: answered in ${Math.round(a.ms)}ms, limit ${x.maxResponseTimeMs}ms`,
        };
    }
    if (x.body !== undefined && !a.body.includes(x.body))
        return {
            ok: false,
            detail: `${what}: body does not contain ${JSON.stringify(x.body)}: ${body(a.body)}`,
        };
    if (x.bodyRegex !== undefined && !new RegExp(x.bodyRegex).test(a.body))
        return { ok: false, detail: `${what}: body does not match /${x.bodyRegex}/: ${body(a.body)}` };
    let parsed;
    if (x.json || x.release?.in === 'json') {
        try {
            parsed = JSON.parse(a.body);
        }
        catch {
            return { ok: false, detail: `${what}: expected JSON, got: ${body(a.body)}` };
        }
        for (const [p, want] of Object.entries(x.json ?? {})) {
            const got = jsonPath(parsed, p);
            if (got !== want)
                return {
                    ok: false,
                    detail: `${what}: ${p} expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`,
                };
        }
    }
    if (x.release && release !== undefined) {
        // A healthy OLD container must not pass for the new release.
        const got = x.release.in === 'header' ? a.headers[x.release.key.toLowerCase()] : jsonPath(parsed, x.release.key);
        const value = Array.isArray(got) ? got[0] : got;
        if (value !== release) {
            return {
                ok: false,
                detail: `${what}: release marker ${x.release.in}:${x.release.key} is ${JSON.stringify(value ?? null)}, expected ${JSON.stringify(release)} (an old release is answering)`,
            };
        }
    }
    return { ok: true, detail: `${a.status} in ${Math.round(a.ms)}ms` };
}


/***/ }),

/***/ 670:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   V: () => (/* binding */ errorInfoWith),
/* harmony export */   o: () => (/* binding */ makeContext)
/* harmony export */ });
/* harmony import */ var _errors__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(3916);
/* harmony import */ var _release__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(800);


/** An ErrorInfo from any thrown value, its message redacted. */
function errorInfoWith(redactor) {
    return (err, where = {}) => {
        const e = (0,_errors__WEBPACK_IMPORTED_MODULE_0__/* .toDeployError */ .pH)(err);
        return {
            class: e.errorClass,
            message: redactor.redact(e.message),
            phase: e.phase ?? where.phase,
            host: e.host ?? where.host,
        };
    };
}
/** A context for work outside a full run (post-step cleanup, operator commands, tests of single steps). */
function makeContext(config, opts) {
    const commit = opts.commit ?? '0'.repeat(40);
    const audit = [];
    return {
        config,
        release: { id: (0,_release__WEBPACK_IMPORTED_MODULE_1__/* .releaseIdFor */ .k)(commit), commit, ref: commit },
        run: opts.run ?? {},
        runToken: opts.runToken,
        redactor: opts.redactor,
        signal: opts.signal ?? new AbortController().signal,
        env: opts.env,
        files: [],
        emit: opts.emit ?? (() => undefined),
        audit: (action, host, detail) => void audit.push({ time: new Date().toISOString(), action, host, detail }),
        errorInfo: errorInfoWith(opts.redactor),
    };
}


/***/ }),

/***/ 800:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   _: () => (/* binding */ RELEASE_ID_RE),
/* harmony export */   k: () => (/* binding */ releaseIdFor)
/* harmony export */ });
/** A release id is derived from the commit so every job of a multi-job workflow names the same release. */
function releaseIdFor(commit) {
    return commit.slice(0, 12);
}
const RELEASE_ID_RE = /^[0-9a-f]{12}$/;


/***/ }),

/***/ 8061:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   F$: () => (/* binding */ changedKeys),
/* harmony export */   FO: () => (/* binding */ parseEnvFile),
/* harmony export */   mJ: () => (/* binding */ renderEnvFile),
/* harmony export */   qb: () => (/* binding */ collectSecrets)
/* harmony export */ });
/* unused harmony export quoteEnvValue */
/* harmony import */ var _errors__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(3916);

function quoteEnvValue(value, dialect = 'compose') {
    if (dialect === 'python-dotenv')
        return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
    if (!value.includes("'") && !/[\n\r]/.test(value))
        return `'${value}'`;
    return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '\\$').replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"`;
}
function collectSecrets(keys, env) {
    const missing = keys.filter((k) => env[k] === undefined || env[k] === '');
    if (missing.length > 0) {
        throw new _errors__WEBPACK_IMPORTED_MODULE_0__/* .DeployError */ .sH('precondition', `secrets.keys: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set or empty in the runner's environment; no host was touched`, { phase: 'preflight' });
    }
    return Object.fromEntries(keys.map((k) => [k, env[k]]));
}
function renderEnvFile(values, dialect = 'compose') {
    if (dialect === 'python-dotenv') {
        // python-dotenv (0.21, as podman-compose uses it) expands ${...} inside any quotes and has no escape for it.
        const bad = Object.entries(values)
            .filter(([, v]) => v.includes('${'))
            .map(([k]) => k);
        if (bad.length) {
            throw new _errors__WEBPACK_IMPORTED_MODULE_0__/* .DeployError */ .sH('precondition', `secrets.keys: the value of ${bad.join(', ')} contains "\${", which podman-compose's .env reader always expands; it cannot reach the container unchanged`);
        }
    }
    return ('# written by homelab-deploy; do not edit on the host, values come from the runner\n' +
        Object.entries(values)
            .map(([k, v]) => `${k}=${quoteEnvValue(v, dialect)}`)
            .join('\n') +
        '\n');
}
/** Parses what renderEnvFile wrote (quoted values may span lines) and plain KEY=value lines, to tell which keys changed. */
function parseEnvFile(text, dialect = 'compose') {
    const out = {};
    const re = /^([A-Za-z_][A-Za-z0-9_]*)=/gm;
    let m;
    let from = 0;
    while ((m = re.exec(text)) !== null) {
        if (m.index < from)
            continue; // inside a previous multi-line value
        let i = m.index + m[0].length;
        const q = text[i];
        let value = '';
        if (q === "'" || q === '"') {
            const escapes = q === '"' || dialect === 'python-dotenv';
            for (i++; i < text.length && text[i] !== q; i++) {
                if (escapes && text[i] === '\\' && i + 1 < text.length) {
                    const c = text[++i];
                    value += q === '"' && c === 'n' ? '\n' : q === '"' && c === 'r' ? '\r' : c;
                }
                else
                    value += text[i];
            }
            i++;
        }
        else {
            const eol = text.indexOf('\n', i);
            value = text.slice(i, eol < 0 ? undefined : eol);
            i = eol < 0 ? text.length : eol;
        }
        out[m[1]] = value;
        from = i;
    }
    return out;
}
function changedKeys(before, after) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    return [...keys].filter((k) => before[k] !== after[k]).sort();
}


/***/ }),

/***/ 906:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {


// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  T: () => (/* binding */ createTargets)
});

// UNUSED EXPORTS: TargetSet

// EXTERNAL MODULE: ./src/errors.ts
var errors = __webpack_require__(3916);
// EXTERNAL MODULE: external "node:crypto"
var external_node_crypto_ = __webpack_require__(7598);
// EXTERNAL MODULE: external "node:net"
var external_node_net_ = __webpack_require__(7030);
// EXTERNAL MODULE: external "node:string_decoder"
var external_node_string_decoder_ = __webpack_require__(6193);
// EXTERNAL MODULE: ./node_modules/ssh2/lib/index.js
var lib = __webpack_require__(5472);
var lib_default = /*#__PURE__*/__webpack_require__.n(lib);
// EXTERNAL MODULE: external "node:fs"
var external_node_fs_ = __webpack_require__(3024);
;// CONCATENATED MODULE: ./src/remote/known-hosts.ts


function parseKnownHosts(text) {
    const entries = [];
    text.split(/\r?\n/).forEach((raw, i) => {
        const line = raw.trim();
        if (!line || line.startsWith('#'))
            return;
        const fields = line.split(/\s+/);
        let marker;
        if (fields[0].startsWith('@')) {
            const m = fields.shift();
            if (m === '@revoked')
                marker = 'revoked';
            else
                return; // @cert-authority: not supported, never grants trust
        }
        if (fields.length < 3)
            return;
        const [hosts, keyType, b64] = fields;
        const key = Buffer.from(b64, 'base64');
        if (key.length === 0)
            return;
        entries.push({ marker, patterns: hosts.split(','), keyType, key, line: i + 1 });
    });
    return entries;
}
/** The name OpenSSH looks up: bare host for port 22, `[host]:port` otherwise. */
function knownHostsName(host, port) {
    return port === 22 ? host : `[${host}]:${port}`;
}
function compilePattern(pattern) {
    if (pattern.startsWith('|')) {
        const parts = pattern.split('|'); // ['', '1', salt, hash]
        if (parts.length !== 4 || parts[1] !== '1')
            return { kind: 'never' };
        return { kind: 'hashed', salt: Buffer.from(parts[2], 'base64'), hash: Buffer.from(parts[3], 'base64') };
    }
    const p = pattern.toLowerCase();
    if (!/[*?]/.test(p))
        return { kind: 'exact', name: p };
    const re = new RegExp('^' +
        p
            .replace(/[.+^${}()|[\]\\]/g, '\\$&')
            .replace(/\*/g, '.*')
            .replace(/\?/g, '.') +
        '$');
    return { kind: 'glob', re };
}
/**
 * `lower` is the name lowercased (plain patterns); `raw` is the name as given, which is what a hashed entry
 * hashes (ssh-keygen -H hashes the name as OpenSSH looked it up).
 */
function matches(m, lower, raw) {
    switch (m.kind) {
        case 'exact':
            return m.name === lower;
        case 'glob':
            return m.re.test(lower);
        case 'hashed': {
            const actual = (0,external_node_crypto_.createHmac)('sha1', m.salt).update(raw).digest();
            return m.hash.length === actual.length && (0,external_node_crypto_.timingSafeEqual)(m.hash, actual);
        }
        case 'never':
            return false;
    }
}
function compileEntry(entry) {
    const positive = [];
    const negative = [];
    for (const p of entry.patterns) {
        if (p.startsWith('!'))
            negative.push(compilePattern(p.slice(1)));
        else
            positive.push(compilePattern(p));
    }
    return { entry, positive, negative };
}
function compiledMatches(c, lower, raw) {
    for (const m of c.negative)
        if (matches(m, lower, raw))
            return false;
    for (const m of c.positive)
        if (matches(m, lower, raw))
            return true;
    return false;
}
function entryMatchesHost(entry, name) {
    return compiledMatches(compileEntry(entry), name.toLowerCase(), name);
}
/**
 * A parsed known_hosts file, with every pattern compiled once and exact names indexed, so looking up one host
 * costs a map lookup plus the entries that need a scan (wildcards, hashed names). The answer per name is kept:
 * every connection (and reconnection) to a host asks it twice, once for the key types and once to verify.
 */
class KnownHosts {
    entries;
    byName = new Map();
    scanned = [];
    revoked = new Set();
    memo = new Map();
    hasTrusted;
    constructor(entries) {
        this.entries = entries;
        let trusted = false;
        for (const e of entries) {
            if (e.marker === 'revoked') {
                this.revoked.add(e.key.toString('base64'));
                continue;
            }
            trusted = true;
            const c = compileEntry(e);
            let indexed = false;
            let needsScan = false;
            for (const m of c.positive) {
                if (m.kind === 'exact') {
                    const list = this.byName.get(m.name);
                    if (list) {
                        if (list[list.length - 1] !== c)
                            list.push(c);
                    }
                    else
                        this.byName.set(m.name, [c]);
                    indexed = true;
                }
                else if (m.kind !== 'never')
                    needsScan = true;
            }
            // An entry with both exact and wildcard patterns is found either way; the scan list is what catches it
            // for a name none of its exact patterns gives.
            if (needsScan || !indexed)
                this.scanned.push(c);
        }
        this.hasTrusted = trusted;
    }
    static parse(text) {
        return new KnownHosts(parseKnownHosts(text));
    }
    /** Trusted (not revoked) entries whose patterns match `name`, in file order. */
    forHost(name) {
        const hit = this.memo.get(name);
        if (hit)
            return hit;
        const lower = name.toLowerCase();
        const found = new Set();
        for (const c of this.byName.get(lower) ?? [])
            if (compiledMatches(c, lower, name))
                found.add(c);
        for (const c of this.scanned)
            if (!found.has(c) && compiledMatches(c, lower, name))
                found.add(c);
        const result = [...found].sort((a, b) => a.entry.line - b.entry.line).map((c) => c.entry);
        this.memo.set(name, result);
        return result;
    }
    /** A key marked @revoked is refused for every host, whatever the line's host patterns say. */
    isRevoked(keyBlob) {
        return this.revoked.size > 0 && this.revoked.has(keyBlob.toString('base64'));
    }
}
/**
 * Reads and compiles each known_hosts file once: a run connects to every host (and reconnects some), and
 * re-reading a fleet's file per connection costs time that grows with the square of the fleet.
 */
class KnownHostsCache {
    files = new Map();
    texts = new Map();
    /** Throws the fs error (ENOENT, EACCES) for a file that cannot be read; a failed read is not cached. */
    file(path) {
        let k = this.files.get(path);
        if (!k) {
            k = KnownHosts.parse(external_node_fs_.readFileSync(path, 'utf8'));
            this.files.set(path, k);
        }
        return k;
    }
    text(text) {
        let k = this.texts.get(text);
        if (!k) {
            k = KnownHosts.parse(text);
            this.texts.set(text, k);
        }
        return k;
    }
}
function fingerprint(keyBlob) {
    return 'SHA256:' + (0,external_node_crypto_.createHash)('sha256').update(keyBlob).digest('base64').replace(/=+$/, '');
}
/** The key type named inside an SSH wire-format public key blob. */
function keyTypeOf(keyBlob) {
    if (keyBlob.length < 4)
        return 'unknown';
    const len = keyBlob.readUInt32BE(0);
    return keyBlob.subarray(4, 4 + len).toString('latin1');
}
const EMPTY = new KnownHosts([]);
/** Decides whether a presented host key is trusted; fails closed on anything not explicitly trusted. */
class HostKeyPolicy {
    pinned;
    source;
    known;
    constructor(entries, pinned = [], source = 'known_hosts') {
        this.pinned = pinned;
        this.source = source;
        this.known = entries instanceof KnownHosts ? entries : new KnownHosts(entries);
    }
    static fromFile(file, pinned, cache) {
        const known = !file ? EMPTY : cache ? cache.file(file) : KnownHosts.parse(external_node_fs_.readFileSync(file, 'utf8'));
        return new HostKeyPolicy(known, pinned, file ?? 'pinned fingerprints');
    }
    /** known_hosts content handed over directly (e.g. from an environment variable), named `source` in messages. */
    static fromText(text, pinned, source, cache) {
        return new HostKeyPolicy(cache ? cache.text(text) : KnownHosts.parse(text), pinned, source);
    }
    /** True when nothing could ever be trusted: connecting would only be refused, or worse, be trust on first use. */
    get isEmpty() {
        return this.pinned.length === 0 && !this.known.hasTrusted;
    }
    /** Key types known for this host, so the handshake asks for a key we can check first. */
    keyTypesFor(name) {
        return [...new Set(this.known.forHost(name).map((e) => e.keyType))];
    }
    /** What a key for this host must be: `type SHA256:...` per known_hosts entry, then the pinned fingerprints. */
    expectedFor(name) {
        return [...this.known.forHost(name).map((e) => `${e.keyType} ${fingerprint(e.key)}`), ...this.pinned];
    }
    verify(name, keyBlob) {
        const fp = fingerprint(keyBlob);
        if (this.known.isRevoked(keyBlob))
            return { ok: false, reason: 'revoked', fingerprint: fp, expected: [] };
        if (this.pinned.includes(fp))
            return { ok: true, fingerprint: fp };
        if (this.known.forHost(name).some((e) => e.key.equals(keyBlob)))
            return { ok: true, fingerprint: fp };
        const expected = this.expectedFor(name);
        return { ok: false, reason: expected.length ? 'mismatch' : 'unknown-host', fingerprint: fp, expected };
    }
}
/** Host key algorithms ssh2 can verify, in its own order of preference (ssh-dss left out, as ssh2 does). */
const HOST_KEY_ALGORITHMS = [
    'ssh-ed25519',
    'ecdsa-sha2-nistp256',
    'ecdsa-sha2-nistp384',
    'ecdsa-sha2-nistp521',
    'rsa-sha2-512',
    'rsa-sha2-256',
    'ssh-rsa',
];
/** ssh2 host-key algorithm names for a known_hosts key type. */
function algorithmsForKeyTypes(types) {
    return types.flatMap((t) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t]));
}
/**
 * The host key algorithms to offer: those of the keys we hold for the host first, so the server shows one we
 * can check whenever it has one, then every other type. The others never widen trust (a key is accepted only if
 * it matches), but they let a server without any of our types still show its key, so the refusal can say
 * which key it has instead of failing with "no matching host key format".
 */
function hostKeyAlgorithmsFor(types) {
    // ssh2 throws on a name it does not know (a security-key type, say); such a key can never be checked anyway.
    const first = algorithmsForKeyTypes(types).filter((t) => HOST_KEY_ALGORITHMS.includes(t) || t === 'ssh-dss');
    return [...new Set([...first, ...HOST_KEY_ALGORITHMS])];
}

// EXTERNAL MODULE: ./src/util/quote.ts
var quote = __webpack_require__(5796);
// EXTERNAL MODULE: ./src/util/concurrency.ts
var concurrency = __webpack_require__(3731);
;// CONCATENATED MODULE: ./src/remote/connection.ts








/** Same as DEFAULTS.commandTimeoutMs in config/resolve.ts; endpoints built from a config always carry their own. */
const DEFAULT_COMMAND_TIMEOUT_MS = 10 * 60_000;
/** Remote grace after `timeout` sends TERM before it sends KILL, and local grace on top of that. */
const KILL_AFTER_S = 3;
const LOCAL_GRACE_MS = (KILL_AFTER_S + 5) * 1000;
const MAX_CAPTURE = 256 * 1024;
/** How long kill() keeps its caller waiting: the first TERM is out by then; the rest runs on the host alone. */
const KILL_SENT_WAIT_MS = 3000;
/** Upper bound for holding a slot for a kill script that never reports back (hung host). */
const KILL_HOLD_CAP_MS = (KILL_AFTER_S + 8) * 1000;
/** Which connection opened an SFTP session, so code holding only the session can drop it (sftp.ts on a stall). */
const sftpOwners = new WeakMap();
/** Closes a stalled SFTP session and makes its connection open a fresh one next time (see SshConnection.discardSftp). */
function discardSftp(sftp) {
    const owner = sftpOwners.get(sftp);
    if (owner)
        owner.discardSftp(sftp);
    else {
        try {
            sftp.end();
        }
        catch {
            /* already closed */
        }
    }
}
/** Marks one SFTP request as in flight on the session's connection; call the result when it is answered. */
function trackSftpRequest(sftp) {
    return sftpOwners.get(sftp)?.beginSftpRequest() ?? (() => undefined);
}
/** Run tokens end up in remote argv and in pkill patterns; keep them to characters that need no care in either. */
const RUN_TOKEN_RE = /^[A-Za-z0-9_.-]{1,64}$/;
/**
 * One SSH connection to one host, reused by every phase of a run.
 * Every command runs under the remote `timeout` utility in its own process group and carries a token as its last
 * argv word, so a command that overruns or is cancelled can be killed on the host, not just abandoned.
 *
 * Channel budget: OpenSSH counts every open session (exec and SFTP) against MaxSessions, and it keeps a session
 * whose channel we closed until its process exits. So `maxChannels - 1` slots serve commands and SFTP, and one is
 * reserved for the kill channel: a kill never waits behind the commands it has to stop, and the total never passes
 * `maxChannels`. Kills requested while one runs are batched into the next kill script. A command we abandon keeps
 * its slot until the kill that covers it has finished, because until then its session still exists on the server.
 */
class SshConnection {
    endpoint;
    client;
    sock;
    channels;
    sftpSession;
    closed = false;
    lostError;
    runToken;
    pendingKills = [];
    /** How to give back the slot of each open SFTP session, for discardSftp(). */
    sftpDrops = new WeakMap();
    killing = false;
    /** Commands and SFTP requests in progress (an abandoned command counts until the kill covering it is done). */
    busy = 0;
    /** Callers waiting for the connection to have no command, SFTP session or kill in progress (see idle()). */
    idleWaiters = [];
    sequence;
    /** What the handshake agreed on (key exchange, host key type, ciphers), for diagnostics. */
    negotiated;
    /** Settles when the TCP connection (or the jump host's channel) is really closed, not just said goodbye to. */
    socketGone;
    constructor(endpoint, client, runToken, sequence, sock) {
        this.endpoint = endpoint;
        this.client = client;
        this.sock = sock;
        this.socketGone = new Promise((resolve) => {
            if (sock.destroyed)
                resolve();
            else
                sock.once('close', () => resolve());
        });
        this.sequence = sequence ?? { value: 0 };
        // With a budget of one there is no room for a reserved kill slot; the kill then takes a second session.
        this.channels = new concurrency/* Semaphore */.j(Math.max(1, endpoint.maxChannels - 1));
        this.runToken = runToken;
        client.on('close', () => {
            if (!this.closed) {
                this.lostError = new errors/* DeployError */.sH('unreachable', `connection to ${endpoint.name} was lost`, {
                    host: endpoint.name,
                });
            }
            this.closed = true;
            this.flushKills();
            this.wakeIdle();
        });
    }
    static async connect(endpoint, credentials, policy, 
    /**
     * `sequence` numbers the commands' tokens; connections of one run share one, so a token names one command
     * of the run even across reconnections (a kill by token never reaches a later command with the same number).
     */
    opts = {}) {
        const name = knownHostsName(endpoint.address, endpoint.port);
        if (policy.isEmpty) {
            // Nothing to verify against would mean trusting whatever key the server shows: refuse before connecting.
            throw new errors/* DeployError */.sH('host-key', `no trusted host key for ${endpoint.name} (${name}): ${policy.source} has no entries and no fingerprints are pinned`, { host: endpoint.name });
        }
        const runToken = opts.runToken ?? (0,external_node_crypto_.randomBytes)(6).toString('hex');
        if (!RUN_TOKEN_RE.test(runToken))
            throw new errors/* DeployError */.sH('internal', `run token must match ${RUN_TOKEN_RE.source}`, {
                host: endpoint.name,
            });
        const sock = opts.via ? await opts.via.forward(endpoint) : await openSocket(endpoint);
        const client = new lib.Client();
        let rejected;
        const knownTypes = policy.keyTypesFor(name);
        // The server's host key types, from its KEXINIT as ssh2's handshake log reports it; only read until the
        // handshake is done, so the log costs no more than a test per packet after that.
        let offered;
        let handshaking = true;
        const config = {
            sock,
            username: endpoint.user,
            privateKey: credentials.privateKey,
            passphrase: credentials.passphrase,
            readyTimeout: endpoint.connectTimeoutMs,
            keepaliveInterval: endpoint.keepaliveIntervalMs,
            keepaliveCountMax: endpoint.keepaliveCount,
            // Key exchange and ciphers stay ssh2's defaults: curve25519-sha256 and aes128-gcm@openssh.com, both done
            // by Node's own crypto, which is what it agrees on with OpenSSH 9 (with or without its native binding).
            algorithms: { serverHostKey: hostKeyAlgorithmsFor(knownTypes) },
            debug: (msg) => {
                if (handshaking && msg.startsWith(REMOTE_HOST_KEY_LOG))
                    offered = msg.slice(REMOTE_HOST_KEY_LOG.length).split(',').filter(Boolean);
            },
            hostVerifier: (key) => {
                const verdict = policy.verify(name, key);
                if (verdict.ok)
                    return true;
                rejected = hostKeyRefusal(endpoint, name, policy, verdict, key, offered);
                return false;
            },
        };
        return new Promise((resolve, reject) => {
            const fail = (err) => {
                client.removeAllListeners('ready');
                client.on('error', () => undefined);
                client.end();
                sock.destroy();
                reject(rejected ?? classifyConnectError(err, endpoint, { name, policy, offered }));
            };
            let negotiated;
            client.once('handshake', (n) => {
                handshaking = false;
                negotiated = n;
            });
            client.once('error', fail);
            client.once('ready', () => {
                client.removeListener('error', fail);
                // ssh2 can emit ECONNRESET after a clean close; an unhandled 'error' would crash the process.
                client.on('error', () => undefined);
                const conn = new SshConnection(endpoint, client, runToken, opts.sequence, sock);
                conn.negotiated = negotiated;
                resolve(conn);
            });
            try {
                client.connect(config);
            }
            catch (err) {
                fail(err); // a config ssh2 refuses (it throws before connecting)
            }
        });
    }
    get isOpen() {
        return !this.closed;
    }
    /** Command and SFTP slots in use (the reserved kill slot is not counted); for tests and diagnostics. */
    get channelsInUse() {
        return this.channels.inUse;
    }
    /**
     * Resolves once no command, kill or SFTP request of ours is in progress on this connection (at once if none
     * is), so a caller can close it without cutting work short. An open but unused SFTP session does not count.
     */
    idle() {
        if (this.closed || (this.busy === 0 && !this.killing))
            return Promise.resolve();
        return new Promise((resolve) => this.idleWaiters.push(resolve));
    }
    /** Counts one piece of work until the returned function is called (once; later calls do nothing). */
    track(release) {
        this.busy++;
        let done = false;
        return () => {
            release();
            if (done)
                return;
            done = true;
            this.busy--;
            this.wakeIdle();
        };
    }
    /** An SFTP request in flight counts as work (sftp.ts reports each one through trackSftpRequest). */
    beginSftpRequest() {
        return this.track(() => undefined);
    }
    wakeIdle() {
        if (!this.closed && (this.busy > 0 || this.killing))
            return;
        for (const w of this.idleWaiters.splice(0))
            w();
    }
    /** Opens a TCP stream from this host to another (ProxyJump). */
    forward(target) {
        return new Promise((resolve, reject) => {
            this.client.forwardOut('127.0.0.1', 0, target.address, target.port, (err, stream) => {
                if (err) {
                    reject(new errors/* DeployError */.sH('unreachable', `jump host ${this.endpoint.name} cannot reach ${target.name} (${target.address}:${target.port}): ${err.message}`, {
                        host: target.name,
                    }));
                }
                else
                    resolve(stream);
            });
        });
    }
    ensureOpen() {
        if (this.closed)
            throw (this.lostError ??
                new errors/* DeployError */.sH('unreachable', `connection to ${this.endpoint.name} is closed`, {
                    host: this.endpoint.name,
                }));
    }
    cancelled(what) {
        return new errors/* DeployError */.sH('cancelled', `${what} on ${this.endpoint.name} was cancelled`, {
            host: this.endpoint.name,
        });
    }
    /**
     * Runs a shell script on the host. Resolves with the exit code for any exit; rejects only when the command
     * could not run to an exit: timeout, lost connection, cancellation.
     */
    async exec(script, opts = {}) {
        this.ensureOpen();
        const timeoutMs = opts.timeoutMs ?? this.endpoint.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
        const token = `hd-${this.runToken}-${++this.sequence.value}`;
        const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
        // `exec timeout` keeps the login shell out of the way; timeout puts the command in its own process group
        // and signals the whole group, so children started by the script die with it. The token is the last argv
        // word of both `timeout` and `sh`, which is what kill() matches on.
        const command = `exec timeout -k ${KILL_AFTER_S} ${seconds} sh -c ${(0,quote/* shQuote */.U)(script)} ${token}`;
        let release;
        try {
            release = this.track(await this.channels.acquire({ signal: opts.signal }));
        }
        catch {
            throw this.cancelled('command'); // cancelled while queued: nothing was started
        }
        return new Promise((resolve, reject) => {
            const started = Date.now();
            let stdout = '';
            let stderr = '';
            let settled = false;
            let keepSlot = false;
            let markOpened = () => undefined;
            const opened = new Promise((r) => (markOpened = r));
            const finish = (fn) => {
                if (settled)
                    return;
                settled = true;
                clearTimeout(timer);
                opts.signal?.removeEventListener('abort', onAbort);
                if (!keepSlot)
                    release();
                fn();
            };
            const abandon = (err) => {
                if (settled)
                    return;
                keepSlot = true;
                finish(() => reject(err));
                // Kill only once the exec request was answered: a kill sent earlier could miss a process about to start.
                // Until the kill is done the session still counts on the server, so the slot stays taken until then.
                const capped = new Promise((r) => setTimeout(r, this.endpoint.connectTimeoutMs, undefined).unref());
                void Promise.race([opened, capped])
                    .then(async (ch) => {
                    ch?.close();
                    if (ch)
                        await this.requestKill(token).finished;
                })
                    .finally(release);
            };
            const timer = setTimeout(() => abandon(new errors/* DeployError */.sH('timeout', `command on ${this.endpoint.name} did not finish within ${seconds}s`, {
                host: this.endpoint.name,
            })), timeoutMs + LOCAL_GRACE_MS);
            const onAbort = () => abandon(this.cancelled('command'));
            if (opts.signal?.aborted) {
                markOpened(undefined);
                return onAbort();
            }
            opts.signal?.addEventListener('abort', onAbort, { once: true });
            const cannotOpen = (err) => {
                markOpened(undefined);
                finish(() => reject(this.closed && this.lostError
                    ? this.lostError
                    : new errors/* DeployError */.sH('unreachable', `cannot open a channel on ${this.endpoint.name}: ${err.message}`, {
                        host: this.endpoint.name,
                    })));
            };
            const onChannel = (err, ch) => {
                if (err)
                    return cannotOpen(err);
                markOpened(ch);
                if (settled)
                    return; // abandoned meanwhile: the abandon path closes it and kills the command
                // A multi-byte character may be split between two chunks; the decoders join it again.
                const outText = new external_node_string_decoder_.StringDecoder('utf8');
                const errText = new external_node_string_decoder_.StringDecoder('utf8');
                const onStdout = opts.onStdout;
                ch.on('data', (d) => {
                    stdout = capTail(stdout + outText.write(d));
                    if (onStdout)
                        onStdout(d);
                });
                ch.stderr.on('data', (d) => (stderr = capTail(stderr + errText.write(d))));
                ch.on('error', () => undefined);
                ch.on('exit', () => undefined);
                ch.on('close', (code, signal) => {
                    stdout = capTail(stdout + outText.end());
                    stderr = capTail(stderr + errText.end());
                    const durationMs = Date.now() - started;
                    if (code === 124 || (code === 137 && durationMs >= timeoutMs)) {
                        return finish(() => reject(new errors/* DeployError */.sH('timeout', `command on ${this.endpoint.name} exceeded its ${seconds}s limit and was killed`, {
                            host: this.endpoint.name,
                        })));
                    }
                    if ((code === undefined || code === null) && !signal) {
                        // No exit status: either the server dropped the channel or the connection died; the client's
                        // 'close' may arrive a tick later, so look again before deciding which.
                        return setImmediate(() => finish(() => this.closed
                            ? reject(this.lostError ??
                                new errors/* DeployError */.sH('unreachable', `connection to ${this.endpoint.name} was lost`, {
                                    host: this.endpoint.name,
                                }))
                            : resolve({ code: null, stdout, stderr, durationMs })));
                    }
                    finish(() => resolve({ code: code ?? null, signal, stdout, stderr, durationMs }));
                });
                if (opts.stdin !== undefined)
                    ch.end(opts.stdin);
                else
                    ch.end();
            };
            try {
                this.client.exec(command, onChannel);
            }
            catch (err) {
                cannotOpen(err); // ssh2 throws when the connection closed while this command waited for a slot
            }
        });
    }
    /**
     * Kills the process groups of commands this run started on the host: the one with `token`, or all of them.
     * Resolves once the first TERM is out (at most a few seconds); the escalation to KILL runs on in the background.
     */
    async kill(token) {
        if (this.closed)
            return;
        await this.requestKill(token).sentPromise;
    }
    /**
     * Kills every command of this run on the host and resolves only once the kill script has ended (its later rounds
     * would otherwise also hit commands started after this call), so what comes next runs alone.
     */
    async killAndWait() {
        if (this.closed)
            return;
        await this.requestKill().finished;
    }
    requestKill(token) {
        let sent;
        let finished;
        const sentPromise = new Promise((r) => (sent = r));
        const finishedPromise = new Promise((r) => (finished = r));
        const req = {
            token,
            sent: () => sent(),
            finished: () => {
                sent();
                finished();
            },
        };
        if (this.closed)
            req.finished();
        else {
            this.pendingKills.push(req);
            if (!this.killing) {
                this.killing = true;
                // Start on the next turn, so the commands one abort cancels all go into one kill script.
                setImmediate(() => void this.runKills());
            }
        }
        return { sentPromise, finished: finishedPromise };
    }
    /** One kill script at a time, on the reserved slot; requests that arrive meanwhile share the next one. */
    async runKills() {
        for (;;) {
            const batch = this.pendingKills.splice(0);
            if (batch.length === 0 || this.closed) {
                for (const r of batch)
                    r.finished();
                this.killing = false;
                this.wakeIdle();
                return;
            }
            await this.killBatch(batch);
        }
    }
    killBatch(batch) {
        const pattern = killPattern(this.runToken, batch.some((r) => r.token === undefined) ? undefined : batch.map((r) => r.token));
        // Matching command lines are the roots; every process below them goes too, because a command may start its own
        // process group or session (a nested `timeout`, setsid) that the group signal of our `timeout` never reaches.
        // The set is taken before the first signal, since children whose parents died are no longer below a root.
        // TERM first; a second round after 1 s also catches a command whose shell had not started at the first; what
        // still lives after timeout's own kill-after gets KILL. When nothing is left the script ends early.
        const script = [
            `p=${(0,quote/* shQuote */.U)(pattern)}`,
            `t() { r=$(pgrep -f "$p" | tr '\\n' ' '); [ -n "$r" ] || return 0; ps -A -o pid= -o ppid= 2>/dev/null | awk -v r="$r" ${(0,quote/* shQuote */.U)(DESCENDANTS_AWK)}; }`,
            // Zombies count as gone: on a host whose init does not reap, they would otherwise stay "alive" forever.
            `alive() { ps -A -o pid= -o stat= 2>/dev/null | awk -v s="$1" ${(0,quote/* shQuote */.U)(ALIVE_AWK)}; }`,
            's=$(t); [ -z "$s" ] || kill -TERM $s 2>/dev/null',
            'echo sent',
            'sleep 1',
            's=$(alive "$s $(t)"); [ -n "$s" ] || exit 0',
            'kill -TERM $s 2>/dev/null',
            `sleep ${KILL_AFTER_S + 1}`,
            's=$(alive "$s $(t)"); [ -z "$s" ] || kill -KILL $s 2>/dev/null',
            'true',
        ].join('\n');
        return new Promise((resolve) => {
            let done = false;
            const end = () => {
                if (done)
                    return;
                done = true;
                clearTimeout(sentTimer);
                clearTimeout(capTimer);
                for (const r of batch)
                    r.finished();
                resolve();
            };
            const sentTimer = setTimeout(() => batch.forEach((r) => r.sent()), KILL_SENT_WAIT_MS);
            const capTimer = setTimeout(end, KILL_HOLD_CAP_MS);
            sentTimer.unref();
            capTimer.unref();
            try {
                this.client.exec(script, (err, ch) => {
                    if (err)
                        return end();
                    ch.on('error', () => undefined);
                    ch.on('data', (d) => {
                        if (d.toString().includes('sent'))
                            batch.forEach((r) => r.sent());
                    });
                    ch.on('close', end);
                    ch.stderr.resume();
                    ch.end();
                });
            }
            catch {
                end(); // the connection went away between the check and the request
            }
        });
    }
    flushKills() {
        for (const r of this.pendingKills.splice(0))
            r.finished();
    }
    /**
     * A lazily opened SFTP session; it holds one command slot while open, because OpenSSH counts it against
     * MaxSessions. A session that stalls is dropped with discardSftp() and the next call opens a fresh one.
     */
    sftp(opts = {}) {
        this.ensureOpen();
        if (!this.sftpSession) {
            // Starting a session counts as work (idle() waits for it); an open session that waits for use does not.
            const starting = this.track(() => undefined);
            const session = (async () => {
                let release;
                try {
                    release = await this.channels.acquire({ signal: opts.signal });
                }
                catch {
                    throw this.cancelled('starting SFTP');
                }
                const limit = opts.timeoutMs ?? this.endpoint.connectTimeoutMs;
                return new Promise((resolve, reject) => {
                    let answered = false;
                    const timer = setTimeout(() => {
                        answered = true;
                        release();
                        reject(new errors/* DeployError */.sH('timeout', `starting SFTP on ${this.endpoint.name} timed out after ${Math.round(limit / 1000)}s`, { host: this.endpoint.name }));
                    }, limit);
                    const onSftp = (err, sftp) => {
                        clearTimeout(timer);
                        if (answered) {
                            sftp?.end();
                            return;
                        }
                        if (err) {
                            release();
                            reject(new errors/* DeployError */.sH('precondition', `cannot start SFTP on ${this.endpoint.name}: ${err.message}`, {
                                host: this.endpoint.name,
                            }));
                        }
                        else {
                            const drop = () => {
                                release();
                                if (this.sftpSession === session)
                                    this.sftpSession = undefined;
                            };
                            this.sftpDrops.set(sftp, drop);
                            sftpOwners.set(sftp, this);
                            sftp.on('error', () => undefined);
                            sftp.once('close', drop);
                            resolve(sftp);
                        }
                    };
                    try {
                        this.client.sftp(onSftp);
                    }
                    catch (err) {
                        onSftp(err, undefined); // the connection closed meanwhile
                    }
                });
            })();
            this.sftpSession = session;
            session.then(starting, () => {
                starting();
                if (this.sftpSession === session)
                    this.sftpSession = undefined;
            });
        }
        return this.sftpSession;
    }
    /**
     * Drops an SFTP session that stopped answering: closes its channel and forgets it, so later transfers start a
     * new one instead of queueing behind the stalled requests. The slot is freed when the server confirms the close,
     * or after a grace period if it never does (then the connection itself is likely gone).
     */
    discardSftp(sftp) {
        const drop = this.sftpDrops.get(sftp);
        const current = this.sftpSession;
        void current
            ?.then((s) => {
            if (s === sftp && this.sftpSession === current)
                this.sftpSession = undefined;
        })
            .catch(() => undefined);
        try {
            sftp.end();
        }
        catch {
            /* already closed */
        }
        if (drop)
            setTimeout(drop, LOCAL_GRACE_MS).unref();
    }
    close() {
        if (this.closed)
            return;
        this.closed = true;
        this.flushKills();
        this.wakeIdle();
        this.client.end();
    }
    /**
     * Closes and waits until the socket is gone: the server's side of the goodbye can take a while on a busy host,
     * and a fleet that moved on at once would hold more connections than its concurrency. A server that does not
     * answer within `graceMs` gets the socket destroyed.
     */
    async closeAndWait(graceMs = CLOSE_GRACE_MS) {
        this.close();
        let timer;
        const late = new Promise((resolve) => {
            timer = setTimeout(() => resolve('late'), graceMs);
        });
        try {
            if ((await Promise.race([this.socketGone, late])) === 'late')
                this.sock.destroy();
        }
        finally {
            clearTimeout(timer);
        }
    }
}
/** Prints the pids in `r` (space-separated) and all their descendants, from `ps -o pid= -o ppid=` lines. */
const DESCENDANTS_AWK = 'BEGIN { n = split(r, a, " "); for (i = 1; i <= n; i++) k[a[i]] = 1 } { p[$1] = $2 } ' +
    'END { do { c = 0; for (x in p) if (!(x in k) && (p[x] in k)) { k[x] = 1; c = 1 } } while (c); for (x in k) print x }';
/** Prints those pids of `s` (space-separated) that still run, from `ps -o pid= -o stat=` lines. */
const ALIVE_AWK = 'BEGIN { n = split(s, a, " "); for (i = 1; i <= n; i++) w[a[i]] = 1 } ($1 in w) && $2 !~ /^Z/ { printf "%s ", $1 }';
/** POSIX ERE for pkill -f: a token as the final argv word, never a prefix of a longer token (hd-x-1 vs hd-x-10). */
function killPattern(runToken, tokens) {
    // The bracket keeps the kill script's own command line, which contains the pattern, from matching it.
    const bracket = (t) => `[${escapeEre(t[0])}]${escapeEre(t.slice(1))}`;
    const alts = tokens ? tokens.map(bracket) : [`${bracket(`hd-${runToken}-`)}[0-9]+`];
    return ` (${alts.join('|')})$`;
}
function escapeEre(s) {
    return s.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}
function capTail(s) {
    return s.length > MAX_CAPTURE ? s.slice(s.length - MAX_CAPTURE) : s;
}
/** How long a closed connection's socket may take to go away before it is destroyed. */
const CLOSE_GRACE_MS = 2000;
function openSocket(endpoint) {
    return new Promise((resolve, reject) => {
        const sock = external_node_net_.connect({ host: endpoint.address, port: endpoint.port });
        sock.setNoDelay(true); // Nagle adds ~40 ms to every small request/response round trip
        const timer = setTimeout(() => {
            sock.destroy();
            reject(new errors/* DeployError */.sH('timeout', `connecting to ${endpoint.name} (${endpoint.address}:${endpoint.port}) timed out after ${endpoint.connectTimeoutMs / 1000}s`, {
                host: endpoint.name,
            }));
        }, endpoint.connectTimeoutMs);
        sock.once('connect', () => {
            clearTimeout(timer);
            sock.removeAllListeners('error');
            resolve(sock);
        });
        sock.once('error', (err) => {
            clearTimeout(timer);
            reject(new errors/* DeployError */.sH('unreachable', `cannot connect to ${endpoint.name} (${endpoint.address}:${endpoint.port}): ${err.code ?? err.message}`, {
                host: endpoint.name,
            }));
        });
    });
}
/** ssh2's handshake log line that lists the server's host key types (from its KEXINIT). */
const REMOTE_HOST_KEY_LOG = 'Handshake: (remote) Host key format: ';
/** A host key the policy does not trust, said the way an operator can act on it. */
function hostKeyRefusal(endpoint, name, policy, verdict, key, offered) {
    const type = keyTypeOf(key);
    const shown = `${type} ${verdict.fingerprint}`;
    const host = endpoint.name;
    if (verdict.reason === 'revoked')
        return new errors/* DeployError */.sH('host-key', `host key of ${host} (${name}) ${shown} is marked @revoked in ${policy.source}`, {
            host,
        });
    if (verdict.reason === 'unknown-host')
        return new errors/* DeployError */.sH('host-key', `host key of ${host} (${name}) ${verdict.fingerprint} is not in ${policy.source} (no entry for ${name}); add it after checking the fingerprint out of band`, { host });
    const knownTypes = policy.keyTypesFor(name);
    if (knownTypes.length > 0 && !knownTypes.some((t) => keyTypeMatches(t, type))) {
        // We asked for the types we hold first, so the server has none of them: a key type mismatch, not a changed key.
        return new errors/* DeployError */.sH('host-key', `host key type mismatch for ${host} (${name}): ${policy.source} holds only ${knownTypes.join(', ')} for it (expected ${verdict.expected.join(' or ')}), but the server offers ${offeredText(offered, type)} and showed ${shown}; add the server's ${type} key to ${policy.source} (or pin its fingerprint) after checking it out of band`, { host });
    }
    return new errors/* DeployError */.sH('host-key', `host key of ${host} (${name}) ${verdict.fingerprint} does not match ${policy.source}: expected ${verdict.expected.join(' or ')}`, { host });
}
/** known_hosts names RSA keys `ssh-rsa` whatever signature algorithm the handshake agrees on. */
function keyTypeMatches(knownType, presented) {
    return knownType === presented || (knownType === 'ssh-rsa' && /^rsa-sha2-|^ssh-rsa$/.test(presented));
}
function offeredText(offered, fallback) {
    if (offered && offered.length > 0)
        return `only ${offered.join(', ')}`;
    return fallback ? fallback : 'no host key type we could read';
}
/** Handshakes that began (the TCP connection was made) but did not finish in time. */
const handshakeTimeouts = new WeakSet();
/**
 * The host answered on its port but the SSH handshake did not finish within connect_timeout: on a lossy link a
 * few lost packets of the key exchange do that (each costs a TCP retransmission timeout, 1 s and more before the
 * connection has a measured round trip), so one more attempt is worth it, unlike a refused or silent port.
 */
function isHandshakeTimeout(err) {
    return err instanceof Error && handshakeTimeouts.has(err);
}
function classifyConnectError(err, endpoint, hostKey) {
    const host = endpoint.name;
    if (err.level === 'client-authentication') {
        return new errors/* DeployError */.sH('auth', `authentication as "${endpoint.user}" on ${host} failed: the server accepted none of our keys`, { host });
    }
    if (err.level === 'client-timeout') {
        const e = new errors/* DeployError */.sH('timeout', `SSH handshake with ${host} timed out after ${endpoint.connectTimeoutMs / 1000}s`, { host });
        handshakeTimeouts.add(e);
        return e;
    }
    if (/no matching host key format/i.test(err.message)) {
        // We offer every host key type ssh2 can check, so the server's keys are all of types it cannot (e.g. only
        // certificates or security keys): nothing it can show could be verified. Retrying will not change that.
        const { name, policy, offered } = hostKey;
        const expected = policy.expectedFor(name);
        return new errors/* DeployError */.sH('host-key', `host key type mismatch for ${host} (${name}): the server offers ${offeredText(offered)}, none of which can be verified here${expected.length ? `; expected ${expected.join(' or ')} from ${policy.source}` : ''}`, { host });
    }
    if (/passphrase|encrypted|private key/i.test(err.message)) {
        return new errors/* DeployError */.sH('auth', `cannot use the private key for ${host}: ${err.message}`, { host });
    }
    return new errors/* DeployError */.sH('unreachable', `SSH connection to ${host} failed: ${err.code ?? err.message}`, {
        host,
    });
}

// EXTERNAL MODULE: ./src/remote/fallback.ts
var fallback = __webpack_require__(2802);
;// CONCATENATED MODULE: ./src/remote/credentials.ts





// ssh2 is CommonJS, and Node's ES-module loader sees only some of its exports by name, not `utils`; the namespace's
// `default` is module.exports there, as under ncc and the tests' CommonJS transform. A loader that hands over
// module.exports itself as the namespace has `utils` on it directly.
const sshUtils = ((lib_default()) ?? lib).utils;
/**
 * Loads and checks a host's private key on the runner, before any connection, so a wrong passphrase or a
 * malformed key is a local, named error instead of an opaque authentication failure on the host.
 *
 * Where the key comes from, first match wins: the host's `ssh.key_env` variable, its `ssh.key` file, then the
 * fallback (the action's `ssh-key` input), then the DEPLOY_SSH_KEY environment variable. A configured source
 * that is empty or unreadable falls through to the next one; a key that is there but cannot be parsed is an
 * error, never a reason to try another key.
 */
function loadCredentials(host, ssh, env, redactor, fallbackKey) {
    const missed = [];
    let key;
    let origin = '';
    if (ssh.keyEnv) {
        const v = env[ssh.keyEnv];
        if (v?.trim()) {
            key = v;
            origin = `environment variable ${ssh.keyEnv}`;
        }
        else
            missed.push(`hosts.${host}.ssh.key_env: ${ssh.keyEnv} is not set or empty`);
    }
    if (!key && ssh.key) {
        try {
            key = external_node_fs_.readFileSync(ssh.key, 'utf8');
            origin = ssh.key;
        }
        catch (err) {
            missed.push(`hosts.${host}.ssh.key: cannot read ${ssh.key} (${err.code})`);
        }
    }
    if (!key && fallbackKey?.trim()) {
        key = fallbackKey;
        origin = "the action's ssh-key input";
    }
    if (!key && env[fallback/* FALLBACK_KEY_ENV */.L]?.trim()) {
        key = env[fallback/* FALLBACK_KEY_ENV */.L];
        origin = `environment variable ${fallback/* FALLBACK_KEY_ENV */.L}`;
    }
    if (!key) {
        const configured = missed.length ? missed.join('; ') : `the config sets no ssh.key or ssh.key_env for it`;
        throw new errors/* DeployError */.sH('auth', `no private key for ${host}: ${configured}, and neither the action's ssh-key input nor ${fallback/* FALLBACK_KEY_ENV */.L} is set`, { host });
    }
    // Keys pasted into secrets often lose their final newline or gain CRLF; normalise before parsing.
    key = key.replace(/\r\n/g, '\n').trim() + '\n';
    redactor.add(key);
    const passphrase = ssh.passphraseEnv ? env[ssh.passphraseEnv] : undefined;
    if (passphrase)
        redactor.add(passphrase);
    const parsed = sshUtils.parseKey(key, passphrase);
    if (parsed instanceof Error) {
        throw new errors/* DeployError */.sH('auth', `private key for ${host} from ${origin} cannot be used: ${parsed.message}`, { host });
    }
    return { privateKey: key, passphrase };
}

;// CONCATENATED MODULE: ./src/remote/pool.ts





function endpointOf(host) {
    return {
        name: host.name,
        address: host.address,
        port: host.ssh.port,
        user: host.ssh.user,
        connectTimeoutMs: host.ssh.connectTimeoutMs,
        keepaliveIntervalMs: host.ssh.keepaliveIntervalMs,
        keepaliveCount: host.ssh.keepaliveCount,
        maxChannels: host.ssh.maxChannels,
        commandTimeoutMs: host.ssh.commandTimeoutMs,
    };
}
/**
 * The host keys a host is checked against. The config's own `known_hosts` file wins; without one, the action's
 * known-hosts input (written to a file), then DEPLOY_KNOWN_HOSTS (known_hosts text). Pinned fingerprints are
 * trusted alongside whichever applies. With none of them the host is refused before any connection: host keys
 * are always verified and nothing is trusted on first use.
 */
function hostKeyPolicyFor(host, 
/** `cache`: files (and text) read once and reused for every host that names them (ConnectionPool keeps one). */
opts) {
    const pinned = host.ssh.fingerprints;
    const file = host.ssh.knownHosts ?? opts.fallbackKnownHosts;
    if (file) {
        try {
            return HostKeyPolicy.fromFile(file, pinned, opts.cache);
        }
        catch (err) {
            const code = err.code;
            throw new errors/* DeployError */.sH('host-key', `known_hosts file for ${host.name} ${code === 'ENOENT' ? 'not found' : `cannot be read (${code})`}: ${file}`, { host: host.name });
        }
    }
    const text = opts.env[fallback/* FALLBACK_KNOWN_HOSTS_ENV */.p];
    if (text?.trim())
        return HostKeyPolicy.fromText(text, pinned, fallback/* FALLBACK_KNOWN_HOSTS_ENV */.p, opts.cache);
    if (pinned.length > 0)
        return HostKeyPolicy.fromFile(undefined, pinned);
    throw new errors/* DeployError */.sH('host-key', `no host key to verify ${host.name} against: the config sets no ssh.known_hosts or ssh.fingerprints for it, and neither the action's known-hosts input nor ${fallback/* FALLBACK_KNOWN_HOSTS_ENV */.p} is set (host keys are always verified; nothing is trusted on first use)`, { host: host.name });
}
/**
 * Connections by host, opened on first use. A host's connection stays open until its work is released
 * (release) or the run ends (closeAll); a later get opens a fresh one. A jump host's connection is shared by every
 * host reached through it and stays open while any of them is. Connections of one run share the run token and
 * one numbering of command tokens, and known_hosts files are read once per pool.
 */
class ConnectionPool {
    config;
    opts;
    entries = new Map();
    knownHosts = new KnownHostsCache();
    sequence = { value: 0 };
    constructor(config, opts) {
        this.config = config;
        this.opts = opts;
    }
    get(hostName) {
        return this.acquire(hostName);
    }
    /**
     * This host's part of the run is over: its connection is closed once nothing of ours runs on it any more
     * (commands and SFTP transfers in progress finish first) and no host reached through it is still open. A
     * later get opens a new connection. Resolves when that is done or when the connection stays (still in use).
     */
    async release(hostName) {
        const e = this.entries.get(hostName);
        if (!e)
            return;
        e.held = false;
        await this.closeIfUnused(hostName, e);
    }
    /** Hosts with a connection (open or opening) right now; for tests and diagnostics. */
    get connectedHosts() {
        return [...this.entries.keys()];
    }
    acquire(hostName, dependent) {
        const e = this.entries.get(hostName);
        if (e) {
            if (dependent)
                e.dependents.add(dependent);
            else
                e.held = true;
            const entry = e;
            // A connection that died is reopened once per request: the next phase may find the host back.
            return entry.conn.then((c) => (c.isOpen ? c : this.reopen(hostName, entry, dependent)));
        }
        const entry = {
            conn: this.open(hostName),
            held: !dependent,
            dependents: new Set(dependent ? [dependent] : []),
            via: this.config.hosts[hostName]?.ssh.jump,
        };
        this.entries.set(hostName, entry);
        entry.conn.catch(() => this.forget(hostName, entry));
        return entry.conn;
    }
    reopen(hostName, entry, dependent) {
        if (this.entries.get(hostName) === entry) {
            this.entries.delete(hostName);
            // What held the dead connection holds the new one.
            const held = entry.held;
            const p = this.acquire(hostName, dependent);
            const fresh = this.entries.get(hostName);
            if (fresh) {
                fresh.held = fresh.held || held;
                for (const d of entry.dependents)
                    fresh.dependents.add(d);
            }
            return p;
        }
        return this.acquire(hostName, dependent);
    }
    /** Drops an entry whose connection failed to open, and gives back its hold on the jump host. */
    forget(hostName, entry) {
        if (this.entries.get(hostName) !== entry)
            return;
        this.entries.delete(hostName);
        this.dropDependent(entry.via, hostName);
    }
    dropDependent(jump, hostName) {
        if (!jump)
            return;
        const j = this.entries.get(jump);
        if (!j)
            return;
        j.dependents.delete(hostName);
        void this.closeIfUnused(jump, j);
    }
    async closeIfUnused(hostName, e) {
        if (e.held || e.dependents.size > 0)
            return;
        let conn;
        try {
            conn = await e.conn;
        }
        catch {
            return; // never opened: forget() has dealt with it
        }
        await conn.idle();
        // Someone may have asked for the host again while its work finished.
        if (this.entries.get(hostName) !== e || e.held || e.dependents.size > 0)
            return;
        this.entries.delete(hostName);
        // Waited for, so a host that gives its connection back has really let go of it before the next one opens.
        await conn.closeAndWait();
        this.dropDependent(e.via, hostName);
    }
    async open(hostName) {
        const host = this.config.hosts[hostName];
        if (!host)
            throw new errors/* DeployError */.sH('config', `unknown host "${hostName}"`);
        try {
            const policy = hostKeyPolicyFor(host, { ...this.opts, cache: this.knownHosts });
            const credentials = loadCredentials(hostName, host.ssh, this.opts.env, this.opts.redactor, this.opts.fallbackKey);
            const via = host.ssh.jump
                ? await this.acquire(host.ssh.jump, hostName).catch((err) => {
                    const e = (0,errors/* toDeployError */.pH)(err, 'unreachable');
                    throw new errors/* DeployError */.sH(e.errorClass, `via jump host ${host.ssh.jump}: ${e.message}`, {
                        host: hostName,
                    });
                })
                : undefined;
            const connect = () => SshConnection.connect(endpointOf(host), credentials, policy, {
                via,
                runToken: this.opts.runToken,
                sequence: this.sequence,
            });
            try {
                return await connect();
            }
            catch (err) {
                if (!isHandshakeTimeout(err))
                    throw err;
                return await connect().catch((again) => {
                    if (!isHandshakeTimeout(again))
                        throw again;
                    const e = again;
                    throw new errors/* DeployError */.sH(e.errorClass, `${e.message} (2 attempts)`, { host: hostName });
                });
            }
        }
        catch (err) {
            throw (0,errors/* toDeployError */.pH)(err, 'unreachable').withContext({ host: hostName });
        }
    }
    /** Connections that are open now (for cancellation: kill what we started on each). */
    async open_() {
        const settled = await Promise.allSettled([...this.entries.values()].map((e) => e.conn));
        return settled.flatMap((s) => (s.status === 'fulfilled' && s.value.isOpen ? [s.value] : []));
    }
    async killAll() {
        const conns = await this.open_();
        await Promise.all(conns.map((c) => c.kill()));
    }
    async closeAll() {
        const conns = await this.open_();
        this.entries.clear();
        // Close hosts reached through a jump host before the jump host itself.
        for (const c of conns.filter((c) => this.config.hosts[c.endpoint.name]?.ssh.jump))
            c.close();
        for (const c of conns)
            c.close();
    }
}

;// CONCATENATED MODULE: ./src/targets/lock-owner.ts
/** The owner record a run writes into every lock it takes, whatever the kind of target. */
function lockOwner(run, target, phase) {
    const now = new Date().toISOString();
    return {
        token: run.runToken,
        runId: run.run.id,
        runUrl: run.run.url,
        actor: run.run.actor,
        commit: run.release.commit,
        release: run.release.id,
        phase,
        host: target,
        startedAt: now,
        heartbeatAt: now,
    };
}

// EXTERNAL MODULE: ./src/util/duration.ts
var duration = __webpack_require__(6518);
;// CONCATENATED MODULE: ./src/targets/runner/commands.ts
/** HD_VAR_<NAME> for a target var: upper-cased, anything but letters, digits and `_` becomes `_`. */
function varEnvName(key) {
    return `HD_VAR_${key.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`;
}
/**
 * The run's environment plus the HD_* variables. Ours win over a same-named variable in the run's environment,
 * and the optional ones are removed when they do not apply, so a stray HD_PREVIOUS or HD_SNAPSHOT in the runner's
 * env can never send a rollback somewhere else.
 */
function commandEnv(base, v) {
    const env = { ...base };
    delete env.HD_SNAPSHOT;
    delete env.HD_VERSION;
    for (const [k, val] of Object.entries(v.target.vars))
        env[varEnvName(k)] = val;
    Object.assign(env, {
        HD_PROJECT: v.project,
        HD_TARGET: v.target.name,
        HD_RELEASE: v.release.id,
        HD_COMMIT: v.release.commit,
        HD_REF: v.release.ref,
        HD_STAGE: v.stage ?? '',
        HD_PREVIOUS: v.previous ?? '',
    });
    if (v.snapshot !== undefined)
        env.HD_SNAPSHOT = v.snapshot;
    if (v.version !== undefined)
        env.HD_VERSION = v.version ?? '';
    return env;
}
const MAX_VERSION_LENGTH = 512;
/**
 * The version `current` printed: its stdout, trimmed, which must be one line; no output means nothing is deployed
 * (null). More than one line is refused rather than guessed at: a tool's banner on stdout would otherwise be
 * recorded as the version to roll back to whenever nothing is deployed (logs belong on stderr).
 */
function parseVersion(stdout) {
    const lines = stdout
        .split(/\r?\n/)
        .map((l) => l.trim())
        .filter(Boolean);
    if (lines.length === 0)
        return { version: null };
    if (lines.length > 1)
        return {
            error: `it printed ${lines.length} lines on stdout; it must print only the version (or nothing when nothing is deployed) and log to stderr`,
        };
    const line = lines[0];
    if (line.length > MAX_VERSION_LENGTH)
        return { error: `it is ${line.length} characters long; a version is at most ${MAX_VERSION_LENGTH}` };
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(line))
        return { error: 'it contains control characters' };
    return { version: line };
}
/**
 * The name a `snapshot` command gives its snapshot: its last non-empty stdout line (a backup tool logs first and
 * names what it made last), at most 200 characters; undefined when it printed nothing.
 */
function snapshotName(stdout) {
    const line = stdout
        .split(/\r?\n/)
        .map((l) => l.trim())
        .filter(Boolean)
        .pop();
    // eslint-disable-next-line no-control-regex
    return line && line.length <= 200 && !/[\u0000-\u001f\u007f]/.test(line) ? line : undefined;
}
/** The last lines of an output for an error message: one line, at most `max` characters. */
function outputGist(output, lines = 5, max = 600) {
    const text = output
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean)
        .slice(-lines)
        .join(' | ');
    return text.length > max ? '…' + text.slice(-max) : text;
}

// EXTERNAL MODULE: external "node:child_process"
var external_node_child_process_ = __webpack_require__(1421);
;// CONCATENATED MODULE: ./src/targets/runner/exec.ts



const DEFAULT_TAIL = 4000;
const DEFAULT_GRACE_MS = 5000;
/** Once the shell exited, how long to wait for its output pipes to close before we stop reading them. */
const DRAIN_MS = 500;
/** Raw text kept beyond the tail, so redaction sees a secret whole before the tail is cut. */
const MARGIN = 64 * 1024;
/** After SIGKILL, how long to wait for the kernel to reap the group. */
const KILL_WAIT_MS = 5000;
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Tracks the process groups of commands still running, so they can be killed together. */
class ProcessGroups {
    live = new Map();
    add(pgid, terminate) {
        this.live.set(pgid, terminate);
    }
    delete(pgid) {
        this.live.delete(pgid);
    }
    get running() {
        return [...this.live.keys()];
    }
    /** SIGTERM to every running group, SIGKILL after the grace; resolves once they are gone. */
    async killAll() {
        await Promise.all([...this.live.values()].map((t) => t('cancelled')));
    }
}
/**
 * The live (non-zombie) members of process group `pgid`. On Linux from /proc, because signal 0 also succeeds for
 * zombies, which an exited process stays in a container whose init does not reap orphans.
 */
function groupMembers(pgid) {
    if (process.platform !== 'linux') {
        try {
            process.kill(-pgid, 0);
            return [pgid];
        }
        catch {
            return [];
        }
    }
    const out = [];
    for (const name of external_node_fs_.readdirSync('/proc')) {
        if (!/^\d+$/.test(name))
            continue;
        let stat;
        try {
            stat = external_node_fs_.readFileSync(`/proc/${name}/stat`, 'utf8');
        }
        catch {
            continue; // exited while we looked
        }
        // "pid (comm) S ppid pgrp ...": comm may contain spaces and parentheses, so parse after the last ')'.
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        if (f[0] !== 'Z' && Number(f[2]) === pgid)
            out.push(Number(name));
    }
    return out;
}
function signalGroup(pgid, sig) {
    // Never our own group, nor init's: a pgid of ours is always a child we spawned detached.
    if (pgid <= 1 || pgid === process.pid)
        return;
    try {
        process.kill(-pgid, sig);
    }
    catch {
        /* the group is already gone */
    }
}
async function waitGone(pgid, ms) {
    const until = Date.now() + ms;
    for (;;) {
        const left = groupMembers(pgid);
        if (left.length === 0 || Date.now() >= until)
            return left;
        await new Promise((r) => setTimeout(r, 25));
    }
}
/** Keeps the end of a growing text within a bound, without re-slicing on every chunk. */
class Tail {
    keep;
    text = '';
    cut = false;
    constructor(keep) {
        this.keep = keep;
    }
    add(s) {
        this.text += s;
        if (this.text.length > 2 * this.keep) {
            this.text = this.text.slice(-this.keep);
            this.cut = true;
        }
    }
}
function finish(tail, chars, redact) {
    // Redact first, then cut: a secret straddling the cut would no longer be recognised.
    const text = redact(tail.text);
    return text.length > chars || tail.cut ? '…' + text.slice(-chars) : text;
}
/**
 * Runs `script` with `/bin/sh -c` in its own process group. Resolves for every end (exit, timeout, cancel) with
 * the exit code (null when killed) and redacted output; rejects only when the shell could not be started (a
 * missing cwd). Processes the command leaves running in its group after a normal exit are its business (a
 * daemon it started); on timeout and cancellation the whole group is killed and waited for.
 */
function runLocal(script, o) {
    const redact = o.redact ?? ((t) => t);
    const chars = o.tailChars ?? DEFAULT_TAIL;
    const graceMs = o.graceMs ?? DEFAULT_GRACE_MS;
    const started = Date.now();
    if (o.signal?.aborted)
        return Promise.resolve({
            code: null,
            stdout: '',
            stderr: '',
            output: '[homelab-deploy] not started: the run was cancelled',
            durationMs: 0,
            timedOut: false,
            cancelled: true,
            survivors: [],
        });
    return new Promise((resolve, reject) => {
        const child = (0,external_node_child_process_.spawn)('/bin/sh', ['-c', script], {
            cwd: o.cwd,
            env: o.env,
            detached: true,
            stdio: [o.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        });
        const pgid = child.pid;
        const keep = chars + MARGIN;
        const all = new Tail(keep);
        const out = new Tail(keep);
        const err = new Tail(keep);
        const decOut = new external_node_string_decoder_.StringDecoder('utf8');
        const decErr = new external_node_string_decoder_.StringDecoder('utf8');
        child.stdout?.on('data', (d) => {
            const s = decOut.write(d);
            out.add(s);
            all.add(s);
        });
        child.stderr?.on('data', (d) => {
            const s = decErr.write(d);
            err.add(s);
            all.add(s);
        });
        if (o.stdin !== undefined && child.stdin) {
            child.stdin.on('error', () => undefined); // the command may not read its stdin
            child.stdin.end(o.stdin);
        }
        let why;
        let killing;
        const terminate = (reason) => {
            if (pgid === undefined)
                return Promise.resolve();
            if (!killing) {
                why = reason;
                killing = (async () => {
                    signalGroup(pgid, 'SIGTERM');
                    if ((await waitGone(pgid, graceMs)).length === 0)
                        return [];
                    signalGroup(pgid, 'SIGKILL');
                    return waitGone(pgid, KILL_WAIT_MS);
                })();
            }
            return killing.then(() => undefined);
        };
        // setTimeout fires at once for delays past 2^31-1 ms (~24.8 days); no command of ours runs that long.
        const timer = setTimeout(() => void terminate('timeout'), Math.min(o.timeoutMs, MAX_TIMER_MS));
        const onAbort = () => void terminate('cancelled');
        o.signal?.addEventListener('abort', onAbort, { once: true });
        if (pgid !== undefined)
            o.groups?.add(pgid, terminate);
        const cleanup = () => {
            clearTimeout(timer);
            o.signal?.removeEventListener('abort', onAbort);
            if (pgid !== undefined)
                o.groups?.delete(pgid);
        };
        let exited = false;
        child.on('error', (e) => {
            if (exited)
                return;
            exited = true;
            cleanup();
            reject(e);
        });
        child.on('exit', (code) => {
            exited = true;
            // The command is over: a timer or a cancellation from now on must not kill what it left running.
            cleanup();
            void (async () => {
                const streams = [child.stdout, child.stderr].filter((s) => s !== null);
                const closed = Promise.all(streams.map((s) => s.destroyed || s.readableEnded ? undefined : new Promise((r) => s.once('close', r))));
                let survivors = [];
                if (killing)
                    survivors = await killing;
                // A process that outlives the shell may hold the pipes open for ever; stop reading after a short drain.
                let drainTimer;
                const drained = await Promise.race([
                    closed.then(() => true),
                    new Promise((r) => (drainTimer = setTimeout(() => r(false), DRAIN_MS))),
                ]);
                clearTimeout(drainTimer);
                if (!drained)
                    for (const s of streams)
                        s.destroy();
                const tailOut = decOut.end();
                const tailErr = decErr.end();
                out.add(tailOut);
                err.add(tailErr);
                all.add(tailOut + tailErr);
                let note = '';
                if (why === 'timeout')
                    note = `\n[homelab-deploy] exceeded ${Math.round(o.timeoutMs / 1000)}s and was killed`;
                else if (why === 'cancelled')
                    note = '\n[homelab-deploy] cancelled: the command was killed';
                if (!drained)
                    note += '\n[homelab-deploy] a process it started still holds its output; no longer read';
                if (survivors.length)
                    note += `\n[homelab-deploy] still alive after SIGKILL: pids ${survivors.join(' ')}`;
                all.add(note);
                resolve({
                    code: why ? null : code,
                    signal: child.signalCode ?? undefined,
                    stdout: finish(out, keep, redact),
                    stderr: finish(err, keep, redact),
                    output: finish(all, chars, redact),
                    durationMs: Date.now() - started,
                    timedOut: why === 'timeout',
                    cancelled: why === 'cancelled',
                    survivors,
                });
            })();
        });
    });
}

;// CONCATENATED MODULE: ./src/targets/runner/runner-target.ts






const TERM_GRACE_MS = 5000;
const STATUS_LINES = 10;
const STATUS_TIMEOUT_MS = 120_000;
function parseLines(text) {
    return text.split('\n').flatMap((l) => {
        if (!l.trim())
            return [];
        try {
            const v = JSON.parse(l);
            return v && typeof v === 'object' ? [v] : [];
        }
        catch {
            return []; // a line cut by a crash or written by hand
        }
    });
}
function describeHolder(owner) {
    if (!owner)
        return 'an unknown owner (no readable owner record)';
    return `${owner.actor ?? 'an unknown actor'} (run ${owner.runUrl ?? owner.runId ?? owner.token}, commit ${(owner.commit ?? '?').slice(0, 12)}, phase ${owner.phase}) since ${owner.startedAt}`;
}
class RunnerTarget {
    ctx;
    config;
    store;
    kind = 'runner';
    name;
    groups = new ProcessGroups();
    /** What `current` printed in pre-flight. */
    startVersion;
    /** What `current` printed after this run's `up`. */
    deployedVersion;
    /** The version this run's deploy would return to (DeployOptions.previous). */
    previous = null;
    /** Release and commit each version was deployed as, from the release log: for `expect.release` checks of an old version. */
    versions = new Map();
    constructor(ctx, config, store) {
        this.ctx = ctx;
        this.config = config;
        this.store = store;
        this.name = config.name;
    }
    // ---- commands ----------------------------------------------------------------------------------------------
    env(vars) {
        return commandEnv(this.ctx.env, {
            project: this.ctx.config.project,
            target: this.config,
            release: this.ctx.release,
            ...vars,
        });
    }
    redact = (text) => this.ctx.redactor.redact(text);
    /**
     * Runs one of the target's commands. `signal` defaults to the run's cancellation; rollback passes its own,
     * because it must still run after the run was cancelled.
     */
    async run(name, script, vars, opts = {}) {
        const started = Date.now();
        const timeoutMs = opts.timeoutMs ?? this.config.timeoutMs;
        let result;
        try {
            result = await runLocal(script, {
                cwd: this.config.cwd,
                env: this.env(vars),
                timeoutMs,
                signal: opts.signal === null ? undefined : (opts.signal ?? this.ctx.signal),
                graceMs: TERM_GRACE_MS,
                redact: this.redact,
                groups: this.groups,
            });
        }
        catch (err) {
            const missing = !external_node_fs_.existsSync(this.config.cwd);
            throw new errors/* DeployError */.sH('config', missing
                ? `targets.${this.name}.cwd: directory ${this.config.cwd} does not exist on this runner (needed to run \`${name}\`)`
                : `targets.${this.name}: cannot run \`${name}\` in ${this.config.cwd}: ${this.redact(err.message)}`, { host: this.name });
        }
        const step = {
            name,
            command: this.redact(script),
            exitCode: result.code,
            durationMs: Date.now() - started,
            output: result.output,
            ok: result.code === 0,
        };
        return { step, result, timeoutMs };
    }
    /** The error for a command that did not succeed, classed by what really happened. */
    failure(ran, failedClass = 'command-failed', phase) {
        const { step, result } = ran;
        const gist = outputGist(result.output);
        const tail = gist ? `: ${gist}` : '';
        const where = { host: this.name, phase };
        if (result.timedOut)
            return new errors/* DeployError */.sH('timeout', `\`${step.name}\` on ${this.name} did not finish within ${(0,duration/* formatDuration */.a3)(ran.timeoutMs)} and was killed${tail}`, where);
        if (result.cancelled)
            return new errors/* DeployError */.sH('cancelled', `\`${step.name}\` on ${this.name} was cancelled${tail}`, where);
        return new errors/* DeployError */.sH(failedClass, `\`${step.name}\` on ${this.name} exited ${result.code ?? `on signal ${result.signal ?? '?'}`}${tail}`, where);
    }
    /** Runs `current` and reads the version; a failure throws with `failedClass`. */
    async readVersion(failedClass, opts = {}) {
        const ran = await this.run('current', this.config.current, { stage: opts.stage }, opts);
        if (!ran.step.ok)
            throw this.failure(ran, failedClass, opts.phase);
        const v = parseVersion(ran.result.stdout);
        if ('error' in v) {
            ran.step.ok = false;
            throw new errors/* DeployError */.sH(failedClass, `\`current\` on ${this.name} printed something that is not a version (${v.error}): ${outputGist(ran.result.stdout, 1, 200)}`, { host: this.name, phase: opts.phase });
        }
        return { ran, version: v.version };
    }
    // ---- state -------------------------------------------------------------------------------------------------
    record(entry) {
        const { ctx } = this;
        return ctx.redactor.redactDeep({
            time: new Date().toISOString(),
            host: this.name,
            target: this.name,
            kind: this.kind,
            release: ctx.release.id,
            commit: ctx.release.commit,
            actor: ctx.run.actor,
            runId: ctx.run.id,
            runUrl: ctx.run.url,
            token: ctx.runToken,
            ...entry,
        });
    }
    audit(action, extra = {}) {
        return this.store.appendAudit(this.name, this.record({ action, ...extra }));
    }
    async loadVersions() {
        const lines = parseLines(await this.store.readReleaseLog(this.name));
        for (const l of lines) {
            if (l.event === 'deploy' && l.result === 'deployed' && typeof l.version === 'string' && l.release)
                this.versions.set(l.version, { release: l.release, commit: l.commit ?? '' });
        }
        return lines;
    }
    /** This run's release is live: `current` prints what it printed right after this release's `up`. */
    isOnNew(current, point) {
        if (current === null)
            return false;
        if (point?.deployed !== undefined && point.deployed !== null && point.deployed === current)
            return true;
        return current === this.ctx.release.id || current === this.ctx.release.commit;
    }
    lockOwner(phase) {
        return lockOwner(this.ctx, this.name, phase);
    }
    // ---- Target ------------------------------------------------------------------------------------------------
    /**
     * Takes the lock first and then asks `current`: the version recorded as the rollback point must be read while
     * no other run can change it. A failed `current` gives the lock back (unless this run held it already), so a
     * failed pre-flight leaves nothing held, as the interface requires.
     */
    async preflight(phase) {
        const lockCfg = this.ctx.config.lock;
        const got = await this.store.lock(this.name, this.lockOwner(phase), {
            staleAfterMs: lockCfg.staleAfterMs,
            takeoverStale: lockCfg.takeoverStale,
        });
        if (!got.ok) {
            const stale = got.ageSeconds >= lockCfg.staleAfterMs / 1000;
            const hint = stale
                ? `; its heartbeat is ${got.ageSeconds}s old (stale) but lock.takeover_stale is off: release it with \`homelab-deploy lock release\` after checking that run is gone`
                : `; last heartbeat ${got.ageSeconds}s ago`;
            throw new errors/* DeployError */.sH('lock-held', `${this.name} is locked by ${describeHolder(got.holder)}${hint} (lock in ${this.store.describe})`, { host: this.name, phase });
        }
        const lock = got.ours
            ? 'ours'
            : got.tookOverFrom !== undefined
                ? 'taken-over'
                : 'acquired';
        try {
            const { ran, version } = await this.readVersion('precondition', { phase });
            const point = (await this.store.readRollbackPoint(this.name, this.ctx.release.id));
            await this.loadVersions();
            this.startVersion = version;
            return {
                current: version,
                onNew: this.isOnNew(version, point),
                prepared: false,
                lock,
                steps: { ok: true, steps: [ran.step] },
                detail: { stateStore: this.store.describe },
            };
        }
        catch (err) {
            if (lock !== 'ours')
                await this.store.unlock(this.name, this.ctx.runToken).catch(() => undefined);
            throw err;
        }
    }
    heartbeat() {
        return this.store.heartbeat(this.name, this.ctx.runToken);
    }
    releaseLock() {
        return this.store.unlock(this.name, this.ctx.runToken);
    }
    /**
     * Records where a rollback of this release returns to. With `infra` and a `snapshot` command, runs it first
     * (e.g. a database backup before production); the last line it prints is kept as the snapshot's name, given to
     * `rollback` as $HD_SNAPSHOT, and its output tail goes to the report and the audit log.
     */
    async snapshot(previous, opts) {
        if (previous === undefined) {
            const point = await this.readRollbackPoint();
            return {
                point,
                warnings: point
                    ? []
                    : [
                        `${this.name} already runs release ${this.ctx.release.id} but no rollback point for it is recorded in ${this.store.describe}; it cannot be rolled back by this run`,
                    ],
            };
        }
        const steps = [];
        let infraSnapshot;
        if (opts.infra && this.config.snapshot) {
            // No stage: the snapshot phase runs once before all stages (target vars say which environment it is).
            const ran = await this.run('snapshot', this.config.snapshot, { previous });
            steps.push(ran.step);
            await this.audit('snapshot', {
                kind: 'infra',
                ok: ran.step.ok,
                exitCode: ran.step.exitCode,
                output: ran.result.output.slice(-1000),
            });
            if (!ran.step.ok)
                throw this.failure(ran, 'command-failed', 'snapshot');
            infraSnapshot = snapshotName(ran.result.stdout);
        }
        const point = {
            release: this.ctx.release.id,
            previous,
            infraSnapshot,
            recordedAt: new Date().toISOString(),
            runId: this.ctx.run.id,
            token: this.ctx.runToken,
        };
        await this.store.writeRollbackPoint(this.name, point);
        await this.audit('snapshot', { kind: 'release', previous, infraSnapshot });
        return { point, steps: { ok: true, steps } };
    }
    readRollbackPoint() {
        return this.store.readRollbackPoint(this.name, this.ctx.release.id);
    }
    /**
     * Runs `up`, then `current` to learn the new version, which is recorded in the rollback point (so a later job
     * can tell this release is live). A non-zero exit resolves with the failed step and `switched` (the platform
     * may be half changed); a timeout or cancellation rejects with that class, like a remote command does.
     */
    async deploy(opts) {
        this.previous = opts.previous;
        await this.appendLog({ event: 'deploy', stage: opts.stage, previous: opts.previous, result: 'started' });
        await this.audit('deploy', { stage: opts.stage, previous: opts.previous });
        const up = await this.run('up', this.config.up, { stage: opts.stage, previous: opts.previous });
        if (up.result.timedOut || up.result.cancelled)
            throw this.failure(up, 'command-failed', opts.stage);
        if (!up.step.ok)
            return { ok: false, switched: true, steps: [up.step], failed: up.step };
        let cur;
        try {
            cur = await this.readVersion('command-failed', { stage: opts.stage, phase: opts.stage });
        }
        catch (err) {
            const e = err;
            if (e.errorClass === 'timeout' || e.errorClass === 'cancelled')
                throw e;
            // `up` worked but the new version cannot be read: later jobs could not tell this release is live.
            const step = {
                name: 'current',
                command: this.redact(this.config.current),
                durationMs: 0,
                ok: false,
                output: e.message,
            };
            return { ok: false, switched: true, steps: [up.step, step], failed: step };
        }
        this.deployedVersion = cur.version;
        const point = (await this.readRollbackPoint()) ?? {
            release: this.ctx.release.id,
            previous: opts.previous,
            recordedAt: new Date().toISOString(),
            runId: this.ctx.run.id,
            token: this.ctx.runToken,
        };
        await this.store.writeRollbackPoint(this.name, {
            ...point,
            deployed: cur.version,
        });
        await this.store.setNeedsAttention(this.name, null);
        return { ok: true, switched: true, version: cur.version, steps: [up.step, cur.ran.step] };
    }
    healthSubject(stage, version) {
        const forRun = version === undefined;
        const v = forRun ? (this.deployedVersion ?? this.startVersion ?? null) : version;
        const known = v !== null ? this.versions.get(v) : undefined;
        const release = forRun
            ? this.ctx.release
            : { id: known?.release ?? v ?? '', commit: known?.commit ?? '', ref: '' };
        const previous = forRun ? this.previous : null;
        const vars = {
            'target.name': this.name,
            'target.kind': this.kind,
            // The host.* names too, so one stage's checks can be written once for SSH hosts and runner targets.
            'host.name': this.name,
            'release.id': release.id,
            'release.commit': release.commit,
            project: this.ctx.config.project,
            'stage.name': stage,
            previous: previous ?? '',
            version: v ?? '',
        };
        for (const [k, val] of Object.entries(this.config.vars)) {
            vars[`target.vars.${k}`] = val;
            vars[`host.vars.${k}`] = val;
        }
        // Only the HD_* values: the run's own environment is added where a command runs, never copied into reports.
        const env = Object.fromEntries(Object.entries(this.env({ stage, previous, version: v, release })).filter((e) => e[0].startsWith('HD_') && typeof e[1] === 'string'));
        return {
            name: this.name,
            vars,
            env,
            release: release.id,
            exec: (command, o) => this.execCheck(command, o, { stage, previous, version: v, release }),
        };
    }
    /** A `command` health check, run on the runner like the target's own commands; rejects on timeout/cancel. */
    async execCheck(command, o, vars) {
        const ran = await this.run('health', command, vars, { timeoutMs: o.timeoutMs, signal: o.signal });
        const r = ran.result;
        if (r.timedOut || r.cancelled)
            throw this.failure(ran, 'command-failed', vars.stage);
        return { code: r.code, signal: r.signal, stdout: r.stdout, stderr: r.stderr, durationMs: r.durationMs };
    }
    /**
     * Runs `rollback` with $HD_PREVIOUS = `opts.to`, then `current` to see what is live. With `to` null (nothing ran
     * before this release) it runs `down` if the target has one; without `down` there is nothing to return to,
     * and that is a failed rollback a human must look at, not a silent success. The rollback does not listen to
     * the run's cancellation (it is what a cancelled run still has to do); with `handOverWaitMs` it is bounded by
     * it, because a runner cannot hand a command over to anyone: it dies with the job.
     */
    async rollback(opts) {
        const t0 = Date.now();
        const budget = opts.handOverWaitMs ?? this.config.timeoutMs;
        const vars = { stage: opts.stage, previous: opts.to, snapshot: opts.infraSnapshot };
        let ran;
        if (opts.to !== null) {
            ran = await this.run('rollback', this.config.rollback, vars, { timeoutMs: budget, signal: null });
        }
        else if (this.config.down) {
            ran = await this.run('down', this.config.down, vars, { timeoutMs: budget, signal: null });
        }
        else {
            const step = {
                name: 'rollback',
                durationMs: 0,
                ok: false,
                output: `nothing to roll back to: ${this.name} ran no version before release ${this.ctx.release.id} (\`current\` printed nothing), and the target has no \`down\` command to remove it`,
            };
            await this.rollbackFailed(opts, step);
            return { ok: false, steps: [step], failed: step };
        }
        if (!ran.step.ok) {
            await this.rollbackFailed(opts, ran.step, this.failure(ran).message);
            return { ok: false, steps: [ran.step], failed: ran.step };
        }
        const steps = [ran.step];
        const actions = [];
        let now;
        try {
            const left = Math.max(1000, budget - (Date.now() - t0));
            const cur = await this.readVersion('command-failed', {
                stage: opts.stage,
                timeoutMs: left,
                signal: null,
            });
            steps.push(cur.ran.step);
            now = cur.version;
            actions.push(`${this.name}: \`current\` prints ${JSON.stringify(now)} after the rollback`);
            if (now !== opts.to)
                actions.push(`${this.name}: expected ${JSON.stringify(opts.to)}; platforms that number a rollback as a new revision (helm) print a new one`);
        }
        catch (err) {
            actions.push(`${this.name}: the version after the rollback could not be read: ${err.message}`);
        }
        const point = (await this.readRollbackPoint().catch(() => undefined));
        if (point?.deployed !== undefined) {
            const rest = { ...point };
            delete rest.deployed;
            await this.store.writeRollbackPoint(this.name, rest);
        }
        this.deployedVersion = undefined;
        await this.store.setNeedsAttention(this.name, null);
        await this.appendLog({
            event: 'rollback',
            stage: opts.stage,
            to: opts.to,
            version: now,
            result: 'rolled_back',
            durationMs: Date.now() - t0,
        });
        await this.audit('rollback', { stage: opts.stage, to: opts.to, infraSnapshot: opts.infraSnapshot });
        return { ok: true, steps, actions: this.ctx.redactor.redactDeep(actions) };
    }
    async rollbackFailed(opts, step, message) {
        const error = message ?? step.output ?? `\`${step.name}\` failed`;
        const entry = { stage: opts.stage, to: opts.to, error };
        await this.store.setNeedsAttention(this.name, this.record({ event: 'rollback-failed', ...entry, output: (step.output ?? '').slice(-2000) }));
        await this.appendLog({ event: 'rollback', ...entry, result: 'rollback_failed' });
        await this.audit('rollback-failed', entry);
    }
    async settle(opts) {
        const version = opts.unchanged ? this.startVersion : (this.deployedVersion ?? this.startVersion);
        await this.appendLog({
            event: 'deploy',
            stage: opts.stage,
            previous: opts.previous,
            version: version ?? null,
            result: opts.unchanged ? 'unchanged' : 'deployed',
            durationMs: opts.durationMs,
        });
    }
    async markNeedsAttention(record) {
        await this.store.setNeedsAttention(this.name, this.record(record));
    }
    appendLog(entry) {
        return this.store.appendReleaseLog(this.name, this.record(entry));
    }
    /** Not bound to the run's cancellation: the final report wants what is live also after a cancel. */
    async readCurrent(opts = {}) {
        const { version } = await this.readVersion('command-failed', {
            timeoutMs: opts.timeoutMs ?? this.config.timeoutMs,
            signal: null,
        });
        const point = (await this.readRollbackPoint());
        return { version, onNew: this.isOnNew(version, point) };
    }
    kill() {
        return this.groups.killAll();
    }
    async close() {
        // Nothing is held open between commands.
    }
    async status() {
        const staleAfterMs = this.ctx.config.lock.staleAfterMs;
        const [lock, lines, points, needsAttention] = await Promise.all([
            this.store.lockState(this.name, staleAfterMs),
            this.loadVersions(),
            this.store.listRollbackPoints(this.name, 10),
            this.store.getNeedsAttention(this.name),
        ]);
        const base = {
            host: this.name,
            kind: this.kind,
            reachable: true,
            lock,
            recent: lines.slice(-STATUS_LINES),
            rollbackPoints: points,
            releases: deployedVersions(lines),
            needsAttention,
            extra: { stateStore: this.store.describe },
        };
        let current;
        try {
            // An operator waits for this: a hung platform CLI is reported as unreachable after two minutes at most.
            const timeoutMs = Math.min(this.config.timeoutMs, STATUS_TIMEOUT_MS);
            current = (await this.readVersion('command-failed', { signal: null, timeoutMs })).version;
        }
        catch (err) {
            return { ...base, reachable: false, error: this.redact(err.message) };
        }
        const point = points.find((p) => p.deployed !== undefined && p.deployed === current) ??
            points.find((p) => p.release === this.versions.get(current ?? '')?.release);
        const line = lines
            .filter((l) => l.event === 'deploy' && l.result === 'deployed' && l.version === current)
            .pop();
        return {
            ...base,
            empty: current === null && lines.length === 0,
            current,
            previous: point ? point.previous : (line?.previous ?? null),
        };
    }
    releaseLockAsOperator(opts) {
        return this.store.releaseAsOperator(this.name, {
            ...opts,
            staleAfterMs: this.ctx.config.lock.staleAfterMs,
        });
    }
    readReleaseLog() {
        return this.store.readReleaseLog(this.name);
    }
}
/** Versions a rollback can return to, newest first, each once. */
function deployedVersions(lines) {
    const seen = new Set();
    for (const l of [...lines].reverse()) {
        if (l.event === 'deploy' && l.result === 'deployed' && typeof l.version === 'string')
            seen.add(l.version);
    }
    return [...seen];
}
/** The runner command target (`kind: runner`); `store` is where its lock, log and rollback points live. */
function createRunnerTarget(ctx, config, store) {
    return new RunnerTarget(ctx, config, store);
}

// EXTERNAL MODULE: ./node_modules/yaml/dist/index.js
var dist = __webpack_require__(8815);
// EXTERNAL MODULE: ./src/health/http.ts
var http = __webpack_require__(7132);
;// CONCATENATED MODULE: ./src/health/compose.ts




const isPodman = (d) => {
    const engine = d.command.trim().split(/\s+/)[0];
    return engine === 'podman-compose' || engine === 'podman';
};
/**
 * Parses `ps --format json`: Docker Compose v2 prints one JSON object per line (v2.21 and later) or one JSON
 * array (earlier v2); podman prints an array of its own shape, with the compose service in a label and the
 * health only inside the Status text.
 */
function parseStates(text, podman) {
    const t = text.trim();
    if (!t)
        return [];
    const rows = t.startsWith('[')
        ? JSON.parse(t)
        : t
            .split('\n')
            .filter((l) => l.trim())
            .map((l) => JSON.parse(l));
    return rows.map((r) => {
        if (podman) {
            const labels = (r.Labels ?? {});
            const status = String(r.Status ?? '');
            return {
                service: labels['com.docker.compose.service'] ?? String(r.Names?.[0] ?? '?'),
                state: String(r.State ?? '').toLowerCase(),
                health: /\(healthy\)/.test(status)
                    ? 'healthy'
                    : /\(unhealthy\)/.test(status)
                        ? 'unhealthy'
                        : /\(starting\)/.test(status)
                            ? 'starting'
                            : '',
            };
        }
        return {
            service: String(r.Service ?? r.Name),
            state: String(r.State ?? '').toLowerCase(),
            health: String(r.Health ?? '').toLowerCase(),
        };
    });
}
/**
 * The services a podman-compose stack declares, from its compose files (merged in order, like compose does).
 * podman-compose 1.0.3 has no `config` command, and it ignores `profiles`, so every service gets containers
 * except those scaled to zero replicas.
 */
function servicesFromComposeFiles(texts) {
    const replicas = new Map();
    for (const text of texts) {
        const doc = (0,dist/* parse */.qg)(text, { merge: true });
        for (const [name, svc] of Object.entries(doc?.services ?? {})) {
            const r = svc?.deploy?.replicas;
            replicas.set(name, r === undefined ? replicas.get(name) : Number(r));
        }
    }
    return [...replicas].filter(([, r]) => r !== 0).map(([name]) => name);
}
/** Compares what runs against what the stack declares; a declared service with no container is `missing`. */
function compareServices(states, wanted) {
    if (wanted.length === 0)
        return { ok: false, detail: 'no services of the stack are on this host' };
    const bad = [];
    for (const svc of wanted) {
        const s = states.filter((x) => x.service === svc);
        if (s.length === 0)
            bad.push(`${svc}: missing`);
        for (const c of s) {
            if (c.state !== 'running')
                bad.push(`${svc}: ${c.state || 'unknown'}`);
            else if (c.health && c.health !== 'healthy')
                bad.push(`${svc}: ${c.health}`);
        }
    }
    return bad.length
        ? { ok: false, detail: `services not running/healthy: ${bad.join(', ')}` }
        : { ok: true, detail: `${wanted.length} service(s) running` };
}
function psCommand(d, project) {
    if (isPodman(d))
        return `podman ps -a --filter ${(0,quote/* shQuote */.U)(`label=io.podman.compose.project=${project}`)} --format json`;
    return `${d.command} -p ${(0,quote/* shQuote */.U)(project)} ps --all --format json`;
}
/** Prints the declared services (docker compose), or the compose files to parse here (podman-compose). */
function servicesCommand(d, project, mark) {
    if (isPodman(d))
        return d.files
            .map((f) => `printf '%s\\n' ${(0,quote/* shQuote */.U)(`${mark}file`)} && cat -- ${(0,quote/* shQuote */.U)(f)}`)
            .join(' && ');
    // `config --services` honours profiles and merges every -f file, exactly as `up` saw them.
    return `${d.command} -p ${(0,quote/* shQuote */.U)(project)}${d.files.map((f) => ` -f ${(0,quote/* shQuote */.U)(f)}`).join('')} config --services`;
}
/**
 * Every service of the stack (or the listed ones) running, and healthy where it declares a healthcheck. The
 * stack's declared services come from the release's compose files, so a service that never got a container (it
 * failed to be created, or `up` stopped before it) counts as missing instead of going unnoticed. One round trip:
 * the container list and the service list are printed after each other, each followed by a marker with its exit
 * code.
 */
async function probeCompose(shell, host, project, env, check, o) {
    const d = host.deploy;
    if (d.strategy !== 'compose')
        return { ok: false, detail: 'compose check on a host whose deploy strategy is not compose' };
    const mark = `__hd_${(0,external_node_crypto_.randomBytes)(6).toString('hex')}__`;
    const ps = psCommand(d, project);
    const script = [
        `cd ${(0,quote/* shQuote */.U)(`${host.path}/current`)} 2>/dev/null || echo 'no current release on this host' >&2`,
        (0,quote/* shExports */.T)(env),
        `${ps}; printf '\\n%s\\n' "${mark}ps=$?"`,
        check.target ? 'true' : `${servicesCommand(d, project, mark)}; printf '\\n%s\\n' "${mark}services=$?"`,
    ].join('\n');
    const timer = AbortSignal.timeout(o.timeoutMs);
    let res;
    try {
        res = await shell.exec(script, { timeoutMs: o.timeoutMs, signal: AbortSignal.any([o.signal, timer]) });
    }
    catch (err) {
        if (timer.aborted && !o.signal.aborted)
            return { ok: false, detail: `no result within ${o.timeoutMs}ms` };
        throw err;
    }
    const parts = splitMarked(res.stdout, mark);
    const stderr = (0,http/* excerpt */.K)(res.stderr, o.redact);
    if (parts.ps?.code !== 0)
        return { ok: false, detail: `${ps}: exit ${parts.ps?.code ?? res.code}: ${stderr}` };
    let states;
    try {
        states = parseStates(parts.ps.text, isPodman(d));
    }
    catch {
        return { ok: false, detail: `cannot parse the container list: ${(0,http/* excerpt */.K)(parts.ps.text, o.redact)}` };
    }
    let wanted;
    if (check.target)
        wanted = check.target.split(',').map((s) => s.trim());
    else {
        if (parts.services?.code !== 0)
            return {
                ok: false,
                detail: `cannot list the stack's services (exit ${parts.services?.code ?? res.code}): ${stderr}`,
            };
        try {
            wanted = isPodman(d)
                ? servicesFromComposeFiles(parts.services.text.split(`${mark}file\n`).slice(1))
                : parts.services.text.split('\n').filter((l) => l.trim());
        }
        catch (err) {
            return { ok: false, detail: `cannot read the compose files: ${o.redact(err.message)}` };
        }
    }
    return compareServices(states, wanted);
}
/** Splits `<output>\n<mark>name=<code>` sections; the newline printf adds before the marker is removed again. */
function splitMarked(stdout, mark) {
    const out = {};
    const re = new RegExp(`\\n${mark}(\\w+)=(\\d+)\\n`, 'g');
    let from = 0;
    for (const m of stdout.matchAll(re)) {
        out[m[1]] = { text: stdout.slice(from, m.index), code: Number(m[2]) };
        from = (m.index ?? 0) + m[0].length;
    }
    return out;
}

// EXTERNAL MODULE: external "node:path/posix"
var posix_ = __webpack_require__(1535);
;// CONCATENATED MODULE: ./src/remote/sftp.ts




const SFTP_REQUEST_TIMEOUT_MS = 30_000;
/** Bytes per write and read request: what OpenSSH's sftp-server and every server since take in one request. */
const CHUNK = 32 * 1024;
/**
 * Requests with data in flight per transfer: 64 of 32 KiB fill OpenSSH's 2 MiB channel window, the most a
 * session can carry anyway; more would only sit in ssh2's buffers.
 */
const WINDOW = 64;
/** Files of a tree open at once (each holds a handle on the server until it is closed). */
const FILES_AT_ONCE = 32;
/** sftp-server's status for a failure it gives no reason for; mkdir answers it for an existing directory. */
const SSH_FX_FAILURE = 4;
/** When each session last answered anything, and the error a stall of it produced (shared by all its requests). */
const sessions = new WeakMap();
function session(sftp) {
    let s = sessions.get(sftp);
    if (!s) {
        s = { lastAnswer: Date.now() };
        sessions.set(sftp, s);
    }
    return s;
}
/**
 * The requests of one transfer on one session. One watchdog per transfer (not a timer per request) and one
 * abort listener: a big file has dozens of requests in flight.
 */
class Requests {
    sftp;
    host;
    opts;
    pending = new Set();
    timer;
    limit;
    onAbort = () => this.abort();
    /** The session stalled or this transfer was cancelled: its requests failed and the session was dropped. */
    stalled = false;
    /** No new work should start (set on a stall, or by the caller when one part of the transfer failed). */
    halted = false;
    /** What stalled or cancelled the transfer: the reason to report for every part it stopped. */
    failure;
    constructor(sftp, host, opts) {
        this.sftp = sftp;
        this.host = host;
        this.opts = opts;
        this.limit = opts.timeoutMs ?? SFTP_REQUEST_TIMEOUT_MS;
        opts.signal?.addEventListener('abort', this.onAbort, { once: true });
    }
    dispose() {
        this.detachSignal();
        this.clearTimer();
    }
    /** Stops listening to the caller's signal; requests still pending keep their watchdog until answered. */
    detachSignal() {
        this.opts.signal?.removeEventListener('abort', this.onAbort);
    }
    /** Sends one request at once and resolves with its answer. */
    call(what, fn) {
        const { host, sftp } = this;
        return new Promise((resolve, reject) => {
            const s = session(sftp);
            if (s.stall)
                return reject(s.stall);
            if (this.opts.signal?.aborted) {
                const err = new errors/* DeployError */.sH('cancelled', `SFTP ${what} on ${host} was cancelled`, { host });
                this.abort(); // fails what is still pending and drops the session
                this.halted = true;
                this.failure ??= err;
                return reject(err);
            }
            let done = false;
            const untrack = trackSftpRequest(sftp);
            const p = {
                what,
                issuedAt: Date.now(),
                fail: (err) => settle(() => reject(err)),
            };
            const settle = (f) => {
                if (done)
                    return;
                done = true;
                this.pending.delete(p);
                if (this.pending.size === 0)
                    this.clearTimer();
                untrack();
                f();
            };
            this.pending.add(p);
            this.arm();
            try {
                fn((err, v) => {
                    s.lastAnswer = Date.now();
                    settle(() => {
                        if (!err)
                            return resolve(v);
                        // Once the session stalled, ssh2 fails every request still on it; the stall is the real reason.
                        reject(s.stall ??
                            new errors/* DeployError */.sH('command-failed', `SFTP ${what} on ${host}: ${err.message}`, {
                                host,
                                cause: err,
                            }));
                    });
                });
            }
            catch (err) {
                // ssh2 throws synchronously when the channel is already closed.
                settle(() => reject(new errors/* DeployError */.sH('unreachable', `SFTP ${what} on ${host}: ${err.message}`, { host })));
            }
        });
    }
    arm() {
        if (this.timer || this.pending.size === 0)
            return;
        // Unref'd: a request left on a connection that is closing must not keep the process alive on its own.
        this.timer = setTimeout(() => this.check(), this.limit).unref();
    }
    clearTimer() {
        if (this.timer)
            clearTimeout(this.timer);
        this.timer = undefined;
    }
    /** Fails everything pending once the session has been silent for the whole limit while a request waited. */
    check() {
        this.timer = undefined;
        const oldest = this.oldest();
        if (!oldest)
            return;
        const s = session(this.sftp);
        const quiet = Date.now() - Math.max(s.lastAnswer, oldest.issuedAt);
        if (quiet < this.limit) {
            this.timer = setTimeout(() => this.check(), this.limit - quiet).unref();
            return;
        }
        const err = new errors/* DeployError */.sH('timeout', `SFTP ${oldest.what} on ${this.host} got no answer within ${formatSeconds(this.limit)}; the SFTP session was closed`, { host: this.host });
        this.stall(err);
    }
    abort() {
        const oldest = this.oldest();
        if (!oldest)
            return;
        this.stall(new errors/* DeployError */.sH('cancelled', `SFTP ${oldest.what} on ${this.host} was cancelled`, { host: this.host }));
    }
    stall(err) {
        const s = session(this.sftp);
        this.stalled = true;
        this.halted = true;
        this.failure ??= err;
        // A cancellation ends this transfer only; a silent server is the session's fault, and every transfer on it fails.
        if (err.errorClass === 'timeout')
            s.stall ??= err;
        for (const p of [...this.pending])
            p.fail(err);
        discardSftp(this.sftp);
    }
    /** Requests are kept in the order they were sent, so the first pending one is the oldest. */
    oldest() {
        return this.pending.values().next().value;
    }
}
function formatSeconds(ms) {
    return ms < 1000 ? `${ms}ms` : `${Math.round(ms / 100) / 10}s`;
}
/** Settles every promise; rejects with the first failure (in the order given) once all are settled. */
async function sftp_all(promises) {
    const results = await Promise.allSettled(promises);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed)
        throw failed.reason;
}
/**
 * Creates directories, parents listed before children, in one burst: sftp-server handles requests in order, so
 * a parent exists by the time its child's request is read. A server that reorders them only costs a second,
 * sequential pass over the ones that failed.
 */
async function mkdirs(req, dirs) {
    const { sftp } = req;
    const mkdir = (d) => req
        .call(`mkdir ${d}`, (cb) => sftp.mkdir(d, { mode: 0o755 }, (err) => cb(err && err.code !== SSH_FX_FAILURE ? err : undefined)))
        .then(() => undefined, (err) => err);
    const first = await Promise.all(dirs.map(mkdir));
    for (const [i, err] of first.entries()) {
        if (!err)
            continue;
        if (err.errorClass !== 'command-failed')
            throw err; // timeouts and cancellation are final
        const d = dirs[i];
        const again = await mkdir(d);
        if (!again)
            continue;
        if (again.errorClass !== 'command-failed')
            throw again;
        // SFTP reports an existing directory only as a generic failure; accept it if a directory is there.
        const st = await req.call(`stat ${d}`, (cb) => sftp.stat(d, cb)).catch(() => undefined);
        if (!st?.isDirectory())
            throw again;
    }
}
/** The file's bytes read back from offset 0 to its end, every read sent at once (the file is small). */
async function readBack(req, handle, file, size) {
    const { sftp } = req;
    const offsets = [];
    // One read past the end: a file longer than the data shows up as more bytes, not as a match.
    for (let at = 0; at <= size; at += CHUNK)
        offsets.push(at);
    const parts = await Promise.all(offsets.map((at) => req.call(`read back ${file}`, (cb) => sftp.read(handle, Buffer.alloc(CHUNK), 0, CHUNK, at, (err, n, buf) => cb(err, err ? undefined : buf.subarray(0, n))))));
    return Buffer.concat(parts);
}
/**
 * Writes one file: open, then every write, the chmod, the fsync, the read-back and the close sent together (one
 * round trip after the open), at most `window` writes in flight.
 */
async function writeWith(req, file, data, mode, opts, window) {
    const { sftp } = req;
    const flags = opts.verify ? (opts.exclusive ? 'xw+' : 'w+') : opts.exclusive ? 'wx' : 'w';
    const handle = await req.call(`open ${file}`, (cb) => sftp.open(file, flags, { mode }, cb));
    const sent = [];
    let failed = false;
    for (let offset = 0; offset < data.length && !failed && !req.halted; offset += CHUNK) {
        const n = Math.min(CHUNK, data.length - offset);
        const release = await window.acquire();
        if (failed || req.halted) {
            release();
            break;
        }
        const at = offset;
        const w = req.call(`write ${file}`, (cb) => sftp.write(handle, data, at, n, at, (err) => cb(err)));
        w.then(release, () => {
            failed = true;
            release();
        });
        sent.push(w);
    }
    if (!failed && !req.halted) {
        // The server's umask may have narrowed or widened the mode given at open; set it explicitly.
        sent.push(req.call(`chmod ${file}`, (cb) => sftp.fchmod(handle, mode, (err) => cb(err))));
        if (opts.fsync) {
            sent.push(req.call(`fsync ${file}`, (cb) => {
                try {
                    sftp.ext_openssh_fsync(handle, (err) => cb(err));
                }
                catch {
                    cb(undefined); // server lacks fsync@openssh.com; the activation script runs `sync` on the file instead
                }
            }));
        }
        if (opts.verify)
            sent.push(readBack(req, handle, file, data.length).then((got) => {
                if (got.equals(data))
                    return;
                throw new errors/* DeployError */.sH('command-failed', `SFTP write ${file} on ${req.host}: read back ${got.length} bytes that differ from the ${data.length} written`, { host: req.host });
            }));
    }
    else if (!failed) {
        failed = true; // halted by another part of the transfer: this file is incomplete
    }
    // After a stall or cancellation the session is closed already; a close request would only wait again.
    const close = req.stalled
        ? undefined
        : req.call(`close ${file}`, (cb) => sftp.close(handle, (err) => cb(err)));
    let error;
    await sftp_all(sent).catch((err) => (error = err));
    // A close that fails after good writes means the data may not be on disk (NFS, quota): that is a failure too.
    if (close)
        await close.catch((err) => (error ??= err));
    if (error !== undefined)
        throw error;
    if (req.failure)
        throw req.failure;
    if (failed) {
        throw new errors/* DeployError */.sH('command-failed', `SFTP write ${file} on ${req.host}: stopped after another file failed`, {
            host: req.host,
        });
    }
}
async function writeFile(sftp, host, file, data, mode, opts = {}) {
    const req = new Requests(sftp, host, opts);
    try {
        await writeWith(req, file, data, mode, opts, new concurrency/* Semaphore */.j(WINDOW));
    }
    finally {
        req.dispose();
    }
}
/**
 * Reads a whole (small) file, or undefined when it cannot be read (missing, no permission), under the same
 * limits as writes: sftp.readFile alone would wait forever on a stalled server. Open, then the size and the
 * first chunk together, then any further chunks together; the close is sent without waiting for its answer,
 * because nothing about the data depends on it.
 */
async function readFileIfExists(sftp, host, file, opts = {}) {
    const req = new Requests(sftp, host, opts);
    const what = `read ${file}`;
    const read = (handle, at) => req.call(what, (cb) => sftp.read(handle, Buffer.alloc(CHUNK), 0, CHUNK, at, (err, n, buf) => cb(err, err ? undefined : buf.subarray(0, n))));
    let handle;
    try {
        handle = await req.call(what, (cb) => sftp.open(file, 'r', cb));
        const h = handle;
        const [st, first] = await Promise.all([req.call(what, (cb) => sftp.fstat(h, cb)), read(h, 0)]);
        const chunks = [first];
        let got = first.length;
        let last = first.length;
        if (last === CHUNK && st.size > got) {
            const offsets = [];
            for (let at = got; at < st.size; at += CHUNK)
                offsets.push(at);
            const rest = await (0,concurrency/* mapLimit */.s)(offsets, WINDOW, (at) => read(h, at));
            for (const r of rest) {
                chunks.push(r);
                got += r.length;
                last = r.length;
                if (r.length < CHUNK)
                    break; // the file shrank meanwhile
            }
        }
        // A file that grew since fstat: read on until a short read.
        while (last === CHUNK) {
            const r = await read(h, got);
            chunks.push(r);
            got += r.length;
            last = r.length;
        }
        return Buffer.concat(chunks, got);
    }
    catch (err) {
        if (err instanceof errors/* DeployError */.sH && err.errorClass === 'command-failed')
            return undefined;
        throw err;
    }
    finally {
        const h = handle;
        if (h && !req.stalled) {
            void req.call(`close ${file}`, (cb) => sftp.close(h, (e) => cb(e))).catch(() => undefined);
            req.detachSignal(); // the close keeps its watchdog until it is answered
        }
        else
            req.dispose();
    }
}
/** SFTP status codes the file-system requests below tell apart. */
const SFTP_STATUS = { noSuchFile: 2, permissionDenied: 3, opUnsupported: 8 };
/** The SFTP status code behind a failed request, where the server sent one. */
function sftpStatusOf(err) {
    const cause = err instanceof Error ? err.cause : undefined;
    return typeof cause?.code === 'number' ? cause.code : undefined;
}
/**
 * The server refused the request as such (unknown to it, or denied by its configuration, as `sftp-server -P`
 * does), not because of the file it names.
 */
function isRefused(err) {
    const code = sftpStatusOf(err);
    return code === SFTP_STATUS.opUnsupported || code === SFTP_STATUS.permissionDenied;
}
/**
 * The extensions the server announced in its VERSION packet. ssh2 keeps them on the session, unexported; an
 * extended request the server did not announce throws in ssh2, so callers ask here first.
 */
function serverExtensions(sftp) {
    const announced = sftp._extensions;
    return new Set(Object.keys(announced ?? {}));
}
/** Runs one request under the session's limits. */
async function one(sftp, host, what, opts, fn) {
    const req = new Requests(sftp, host, opts);
    try {
        return await req.call(what, fn);
    }
    finally {
        req.dispose();
    }
}
/**
 * What is at each path, all asked at once: `file` (a regular file, links followed), `other` (anything else,
 * not followed) or `none`. Any answer but "no such file" that leaves a path unknown is an error.
 */
async function pathKinds(sftp, host, paths, opts = {}) {
    const req = new Requests(sftp, host, opts);
    const kind = async (p) => {
        const st = await req
            .call(`lstat ${p}`, (cb) => sftp.lstat(p, cb))
            .catch((err) => {
            if (sftpStatusOf(err) === SFTP_STATUS.noSuchFile)
                return undefined;
            throw err;
        });
        if (!st)
            return 'none';
        if (st.isFile())
            return 'file';
        if (!st.isSymbolicLink())
            return 'other';
        const target = await req.call(`stat ${p}`, (cb) => sftp.stat(p, cb)).catch(() => undefined);
        return target?.isFile() ? 'file' : 'other';
    };
    try {
        return await Promise.all(paths.map(kind));
    }
    finally {
        req.dispose();
    }
}
/** A second name for a file (hardlink@openssh.com): no data copied, no space needed for the data. */
function hardlink(sftp, host, target, link, opts = {}) {
    return one(sftp, host, `link ${target} ${link}`, opts, (cb) => sftp.ext_openssh_hardlink(target, link, (err) => cb(err)));
}
/** Renames over an existing file atomically (posix-rename@openssh.com; plain SFTP rename refuses to replace). */
function replaceFile(sftp, host, from, to, opts = {}) {
    return one(sftp, host, `rename ${from} ${to}`, opts, (cb) => sftp.ext_openssh_rename(from, to, (err) => cb(err)));
}
/** Creates an empty file that must not exist yet: its existence is the record. */
async function createEmpty(sftp, host, file, mode, opts = {}) {
    const handle = await one(sftp, host, `create ${file}`, opts, (cb) => sftp.open(file, 'wx', { mode }, cb));
    await one(sftp, host, `close ${file}`, opts, (cb) => sftp.close(handle, (err) => cb(err)));
}
/**
 * Appends to a log file (created with `mode` where missing) as `>>` does: opened for append, so each write
 * lands at the end whatever its offset says; the writes and the close sent together after the open.
 */
async function appendToFile(sftp, host, file, data, mode, opts = {}) {
    const req = new Requests(sftp, host, opts);
    try {
        const handle = await req.call(`open ${file}`, (cb) => sftp.open(file, 'a', { mode }, cb));
        // sftp-server handles a session's requests in order, so the parts of a long line land in order too.
        const sent = [];
        for (let at = 0; at < data.length; at += CHUNK) {
            const n = Math.min(CHUNK, data.length - at);
            sent.push(req.call(`append ${file}`, (cb) => sftp.write(handle, data, at, n, at, (err) => cb(err))));
        }
        sent.push(req.call(`close ${file}`, (cb) => sftp.close(handle, (err) => cb(err))));
        await sftp_all(sent);
    }
    finally {
        req.dispose();
    }
}
/**
 * Makes the folder's entries durable (a rename is on disk once its folder is synced): the folder opened read-only
 * as a file, which OpenSSH's sftp-server allows, and fsync@openssh.com on that handle. Open, then the fsync and
 * the close together.
 */
async function fsyncFolder(sftp, host, dir, opts = {}) {
    const req = new Requests(sftp, host, opts);
    try {
        const handle = await req.call(`open ${dir}`, (cb) => sftp.open(dir, 'r', cb));
        const synced = req.call(`fsync ${dir}`, (cb) => sftp.ext_openssh_fsync(handle, (err) => cb(err)));
        const closed = req.call(`close ${dir}`, (cb) => sftp.close(handle, (err) => cb(err)));
        await sftp_all([synced, closed]);
    }
    finally {
        req.dispose();
    }
}
/**
 * Uploads a tree of files under `base` (created if missing): every directory in one burst, then the files,
 * many at once, each written like writeFile, with the data of all of them sharing one window of requests.
 */
async function uploadTree(conn, base, files, opts = {}) {
    const host = conn.endpoint.name;
    const sftp = await conn.sftp({ signal: opts.signal });
    const dirs = new Set([base]);
    for (const f of files) {
        let d = posix_.dirname(posix_.join(base, f.path));
        while (d.length > base.length) {
            dirs.add(d);
            d = posix_.dirname(d);
        }
    }
    const req = new Requests(sftp, host, opts);
    let bytes = 0;
    try {
        await mkdirs(req, [...dirs].sort((a, b) => a.length - b.length));
        const window = new concurrency/* Semaphore */.j(WINDOW);
        const handles = Math.max(1, Math.min(FILES_AT_ONCE, sftp.maxOpenHandles ?? FILES_AT_ONCE));
        // One failed file fails the upload at once; the rest stop sending and close what they opened.
        let firstError;
        await (0,concurrency/* mapLimit */.s)(files, handles, async (f) => {
            if (req.halted)
                return;
            try {
                await writeWith(req, posix_.join(base, f.path), f.data, f.mode, {}, window);
                bytes += f.data.length;
            }
            catch (err) {
                if (firstError === undefined) {
                    firstError = err;
                    req.halted = true;
                }
            }
        });
        // A stall or cancellation is the reason for the whole upload, whichever file noticed first.
        if (firstError !== undefined)
            throw req.failure ?? firstError;
    }
    finally {
        req.dispose();
    }
    if (opts.signal?.aborted)
        throw new errors/* DeployError */.sH('cancelled', `upload to ${host}:${base} was cancelled`, { host });
    return bytes;
}

;// CONCATENATED MODULE: ./src/remote/steps.ts


const TAIL = 4000;
/** Output kept per step (the report shows only its tail); a step printing more keeps its last part. */
const MAX_STEP_OUTPUT = 256 * 1024;
/**
 * Why a step cannot run in the script's own shell, or undefined when it can. In the script's shell a step's
 * `exit 1` ends the script with that code, which is what a failing step does anyway; but an early successful exit,
 * changed shell options, traps, exec, background jobs, environment or working directory would reach the steps
 * after it, so such steps get a subshell. The test reads the text, so it errs on the side of a subshell: `exit`
 * in a quoted string counts too. A `cd` needs no subshell: the script returns to its starting folder before the
 * next step. The `last` step has no steps after it: options, variables, jobs or the environment it changes reach
 * no other step, so only an early exit, an optional failure or what could take the script's own framing away
 * (exec, traps, eval, sourced files) still needs a subshell there.
 */
function subshellReason(step, opts = {}) {
    if (step.optional)
        return 'optional: its failure must not end the script';
    if (step.isolated)
        return 'isolated';
    const s = step.script;
    const framing = [
        [/(?<![\w.$-])exec\b/, 'exec'],
        [/(?<![\w.$-])(?:trap|eval|source)\b/, 'changes shell state'],
        [/(?:^|[;&|({]|\b(?:then|do|else)\b)[ \t]*\.[ \t]+\S/m, 'sources a file'],
    ];
    for (const m of s.matchAll(/(?<![\w.$-])exit\b(?:[ \t]+("?)([^\s;&|)}"]+)\1)?/g)) {
        const code = m[2] !== undefined && /^\d{1,3}$/.test(m[2]) ? Number(m[2]) : NaN;
        if (!(code >= 1 && code <= 255))
            return `may exit early with success (${m[0].trim()})`;
    }
    for (const [re, why] of framing)
        if (re.test(s))
            return why;
    if (opts.last)
        return undefined;
    const words = [
        [/(?<![\w.$-])(?:set|shopt)[ \t]+[-+]/, 'changes shell options'],
        [/(?<![\w.$-])(?:umask|ulimit|readonly|unset|export|alias)\b/, 'changes shell state'],
        // An assignment to an upper-case name may change an environment variable (PATH, HOME) for later steps.
        [/(?:^|[\s;&|({`])[A-Z_][A-Z0-9_]*\+?=(?!=)/m, 'sets an environment variable'],
        // A lone `&` (not `&&`, `>&`, `&>`, `|&`): a job a later step's `wait` would wait for.
        [/(?<![&>|<])&(?![&>])/, 'starts a background job'],
        [/(?<![\w.$-])wait\b/, 'waits for jobs'],
    ];
    for (const [re, why] of words)
        if (re.test(s))
            return why;
    return undefined;
}
/**
 * The remote script for a list of steps. Steps that can run in the script's shell are shell functions called
 * in it; the rest run in a subshell. Each step's boundaries are printed as marker lines (`<mark> b<i>` before,
 * `<mark> e<i> <code>` after) that the client times as they arrive, so the host forks nothing for framing or
 * timing. A failing step ends the script with its exit code (an EXIT trap prints the end marker of a step that
 * leaves through `exit`); only 124 is passed on as 1, because a script exiting 124 reads as the remote timeout.
 */
function stepsScript(steps, mark) {
    const lines = [
        `__hd_m=${mark}`,
        '__hd_i=',
        '__hd_w=$PWD',
        `trap '__hd_r=$?; [ -z "$__hd_i" ] || { printf "\\n%s e%s %s\\n" "$__hd_m" "$__hd_i" "$__hd_r"; [ "$__hd_r" -ne 124 ] || exit 1; }' EXIT`,
        // Defined before any runs: a step that does not parse stops the script before anything happened.
        ...steps.map((s, i) => `__hd_s${i}() {\n${s.script}\n}`),
    ];
    let moved = false;
    steps.forEach((s, i) => {
        const sub = subshellReason(s, { last: i === steps.length - 1 }) !== undefined;
        const call = sub ? `( __hd_i=; __hd_s${i} )` : `__hd_s${i}`;
        const after = s.optional ? '' : ` || exit $(( __hd_r == 124 ? 1 : __hd_r ))`;
        lines.push(`${moved ? 'cd "$__hd_w" 2>/dev/null; ' : ''}printf '%s b${i}\\n' "$__hd_m"; __hd_i=${i}; ${call} 2>&1 </dev/null; __hd_r=$?; __hd_i=; ` +
            `printf '\\n%s e${i} %s\\n' "$__hd_m" "$__hd_r"; [ "$__hd_r" -eq 0 ]${after}`);
        if (!sub && /(?<![\w.$-])(?:cd|pushd|popd)\b/.test(s.script))
            moved = true;
    });
    lines.push('exit 0');
    return lines.join('\n');
}
/** Splits the marker-framed stdout of a steps script into steps as it arrives, noting when each began and ended. */
class StepStream {
    mark;
    decoder = new external_node_string_decoder_.StringDecoder('utf8');
    partial = '';
    lineStart = true;
    current = -1;
    parts = [];
    beginRe;
    endRe;
    constructor(mark) {
        this.mark = mark;
        this.beginRe = new RegExp(`^${escapeRe(mark)} b(\\d+)$`);
        this.endRe = new RegExp(`^${escapeRe(mark)} e(\\d+) (\\d+)$`);
    }
    push(chunk) {
        this.feed(this.decoder.write(chunk));
    }
    end() {
        this.feed(this.decoder.end());
        if (this.partial)
            this.text(this.partial);
        this.partial = '';
    }
    feed(s) {
        const now = Date.now();
        let from = 0;
        for (;;) {
            const nl = s.indexOf('\n', from);
            if (nl < 0)
                break;
            const line = this.partial + s.slice(from, nl);
            this.partial = '';
            from = nl + 1;
            if (this.lineStart && line.startsWith(this.mark) && this.marker(line, now))
                continue;
            this.text(line + '\n');
            this.lineStart = true;
        }
        const rest = s.slice(from);
        if (!rest)
            return;
        // A line cannot be a marker once it is longer than one; pass such text on instead of holding it.
        if (this.partial.length + rest.length > this.mark.length + 32) {
            this.text(this.partial + rest);
            this.partial = '';
            this.lineStart = false;
        }
        else
            this.partial += rest;
    }
    marker(line, now) {
        const b = this.beginRe.exec(line);
        if (b && Number(b[1]) === this.parts.length) {
            this.current = this.parts.length;
            this.parts.push({ text: '', began: now });
            return true;
        }
        const e = this.endRe.exec(line);
        if (e && Number(e[1]) === this.current) {
            const p = this.parts[this.current];
            // The framing printed a newline of its own before the end marker.
            if (p.text.endsWith('\n'))
                p.text = p.text.slice(0, -1);
            p.ended = now;
            p.code = Number(e[2]);
            this.current = -1;
            return true;
        }
        return false;
    }
    text(s) {
        if (this.current < 0)
            return; // outside any step: only the framing prints there
        const p = this.parts[this.current];
        p.text += s;
        if (p.text.length > MAX_STEP_OUTPUT * 2)
            p.text = p.text.slice(p.text.length - MAX_STEP_OUTPUT);
    }
}
/**
 * Runs several steps in one remote shell (one round trip, one timeout wrapper) while keeping each step's exit
 * code, output and duration apart. Step boundaries are printed with a random marker the steps cannot forge.
 * Durations are measured on the client from the arrival of each step's markers.
 */
async function runSteps(conn, steps, 
// Without timeoutMs the host's ssh.command_timeout applies (see ExecOptions).
opts = {}) {
    const mark = `@@hd-${(0,external_node_crypto_.randomBytes)(8).toString('hex')}@@`;
    const stream = new StepStream(mark);
    const res = await conn.exec(stepsScript(steps, mark), { ...opts, onStdout: (d) => stream.push(d) });
    stream.end();
    const finishedAt = Date.now();
    const reports = [];
    const outputs = {};
    stream.parts.forEach((p, i) => {
        const s = steps[i];
        if (p.text.length > MAX_STEP_OUTPUT)
            p.text = p.text.slice(p.text.length - MAX_STEP_OUTPUT);
        const exitCode = p.code ?? null;
        outputs[s.name] = p.text;
        reports.push({
            name: s.name,
            command: s.display ?? firstLine(s.script),
            exitCode,
            durationMs: Math.max(0, (p.ended ?? finishedAt) - p.began),
            output: p.text.length > TAIL ? '…' + p.text.slice(p.text.length - TAIL) : p.text,
            ok: exitCode === 0,
        });
    });
    const failed = reports.find((r, i) => !r.ok && !steps[i].optional);
    if (!failed && reports.length < steps.length) {
        // The script died between markers (killed, or the shell itself failed): report that honestly.
        const missing = steps[reports.length];
        const r = {
            name: missing?.name ?? 'script',
            exitCode: res.code,
            durationMs: 0,
            output: (res.stderr || res.stdout).slice(-TAIL),
            ok: false,
        };
        reports.push(r);
        return { ok: false, steps: reports, failed: r, outputs };
    }
    if (!failed && res.code !== 0) {
        const r = {
            name: 'script',
            exitCode: res.code,
            durationMs: res.durationMs,
            output: res.stderr.slice(-TAIL),
            ok: false,
        };
        return { ok: false, steps: [...reports, r], failed: r, outputs };
    }
    return { ok: !failed, steps: reports, failed, outputs };
}
function firstLine(s) {
    const l = s.trim().split('\n')[0];
    return l.length > 120 ? l.slice(0, 117) + '...' : l;
}
function escapeRe(s) {
    return s.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}

// EXTERNAL MODULE: ./src/secrets/env-file.ts
var env_file = __webpack_require__(8061);
;// CONCATENATED MODULE: ./src/snapshot/action.ts

/** A failed snapshot action; `actions` holds it and whatever the same call had done before it failed. */
class SnapshotActionError extends errors/* DeployError */.sH {
    actions;
    constructor(cause, actions) {
        super(cause.errorClass, cause.message, { host: cause.host, phase: cause.phase, cause });
        this.actions = actions;
        this.name = 'SnapshotActionError';
    }
}
const VERBS = {
    'snapshot-created': ['created', 'create'],
    'snapshot-rolled-back': ['rolled back to', 'roll back to'],
    'snapshot-deleted': ['deleted', 'delete'],
};
/** Times `fn` and turns its result or failure into a SnapshotAction (a failure throws SnapshotActionError). */
async function act(base, fn, before = []) {
    const t0 = Date.now();
    const [done, todo] = VERBS[base.action];
    try {
        const r = await fn();
        const warnings = r.warnings?.length ? r.warnings : undefined;
        return {
            ...base,
            ok: true,
            time: new Date().toISOString(),
            durationMs: Date.now() - t0,
            tasks: r.tasks,
            warnings,
            detail: `${base.target} ${done} snapshot ${base.name}${r.detail ? ` ${r.detail}` : ''}${warnings ? ` (warnings: ${warnings.join('; ')})` : ''}`,
        };
    }
    catch (err) {
        const e = (0,errors/* toDeployError */.pH)(err, 'command-failed').withContext({ host: base.host });
        const failed = {
            ...base,
            ok: false,
            time: new Date().toISOString(),
            durationMs: Date.now() - t0,
            error: e.message,
            detail: `${base.target} FAILED to ${todo} snapshot ${base.name}: ${e.message}`,
        };
        throw new SnapshotActionError(e, [...before, failed]);
    }
}

;// CONCATENATED MODULE: ./src/snapshot/command.ts



/**
 * The command provider's inventory on the host: one JSON line per snapshot it created or deleted.
 *
 * Why a record and not a name prefix as for Proxmox: Proxmox can list a VM's snapshots, so ours are recognised in
 * its listing; a `create` command can make anything (a ZFS snapshot, a tarball, an rsync copy on a NAS) and the
 * config has no `list` command, so the only source of what this tool made is what it ran. The record lives on the
 * host, beside the release log and the rollback points, so every job and runner sees the same one (host state
 * lives on hosts), and appends are serialised by the deploy lock every run holds while it snapshots or prunes.
 */
const SNAPSHOT_RECORD = '.homelab-deploy/snapshots.log';
const RECORD_FAILED = '@@hd-snapshot-record-failed@@';
/** Snapshots the record says exist (created, not deleted since), oldest first. Unreadable lines are skipped. */
function liveSnapshots(text) {
    const live = new Map();
    for (const line of text.split('\n')) {
        let rec;
        try {
            rec = JSON.parse(line);
        }
        catch {
            continue;
        }
        if (typeof rec?.name !== 'string')
            continue;
        // Re-insert on create so a name made again (a re-run) counts as new as its latest creation.
        live.delete(rec.name);
        if (rec.event === 'created')
            live.set(rec.name, rec);
    }
    return [...live.values()];
}
function commandProvider(ctx, host, s, shell) {
    const record = `${host.path}/${SNAPSHOT_RECORD}`;
    const recordLine = (event, name) => {
        const line = {
            time: new Date().toISOString(),
            event,
            provider: 'command',
            name,
            host: host.name,
            release: ctx.release.id,
            token: ctx.runToken,
        };
        // A snapshot that exists but is not recorded is never pruned: say so rather than fail the action that worked.
        return `{ mkdir -p ${(0,quote/* shQuote */.U)(`${host.path}/.homelab-deploy`)} && printf '%s\\n' ${(0,quote/* shQuote */.U)(JSON.stringify(line))} >> ${(0,quote/* shQuote */.U)(record)}; } || echo ${RECORD_FAILED}`;
    };
    /** Runs a configured command with the snapshot's name in HD_SNAPSHOT; `after` runs only if it succeeded. */
    const run = async (what, key, script, name, after) => {
        const res = await shell.exec([
            (0,quote/* shExports */.T)({ HD_SNAPSHOT: name, HD_HOST: host.name, HD_PATH: host.path, HD_RELEASE: ctx.release.id }),
            // Its own shell: the configured script may `exit` or `cd` without skipping the bookkeeping after it.
            `sh -c ${(0,quote/* shQuote */.U)(script)} || exit $?`,
            after ?? 'true',
        ].join('\n'), { timeoutMs: 10 * 60_000, signal: ctx.signal });
        if (res.code !== 0) {
            throw new errors/* DeployError */.sH('command-failed', `snapshot ${what} of ${name} on ${host.name} (hosts.${host.name}.snapshot.command.${key}) exited ${res.code ?? res.signal}, expected 0: ${(res.stderr || res.stdout).trim().slice(-300)}`, { host: host.name });
        }
        return res.stdout.includes(RECORD_FAILED)
            ? [`could not append to ${record}; snapshot ${name} will not be pruned`]
            : [];
    };
    const base = (action, name) => ({ action, host: host.name, provider: 'command', target: 'command', name });
    return {
        describe: 'command',
        create: (name) => act(base('snapshot-created', name), async () => ({
            warnings: await run('create', 'create', s.create, name, recordLine('created', name)),
        })),
        rollback: (name) => act(base('snapshot-rolled-back', name), async () => ({
            warnings: await run('rollback', 'rollback', s.rollback, name),
        })),
        prune: async (protect) => {
            // Without a delete command there is nothing to prune with; the record keeps what a later delete will need.
            if (!s.delete)
                return [];
            const del = s.delete;
            const res = await shell.exec(`cat ${(0,quote/* shQuote */.U)(record)} 2>/dev/null; true`, {
                timeoutMs: 30_000,
                signal: ctx.signal,
            });
            const live = liveSnapshots(res.stdout);
            const kept = live.filter((x) => protect.includes(x.name)).length;
            const doomed = live
                .filter((x) => !protect.includes(x.name))
                .reverse()
                .slice(Math.max(0, s.keep - kept));
            const done = [];
            for (const snap of doomed)
                done.push(await act(base('snapshot-deleted', snap.name), async () => ({
                    warnings: await run('delete', 'delete', del, snap.name, recordLine('deleted', snap.name)),
                }), done));
            return done;
        },
    };
}

// EXTERNAL MODULE: external "node:http"
var external_node_http_ = __webpack_require__(7067);
// EXTERNAL MODULE: external "node:tls"
var external_node_tls_ = __webpack_require__(1692);
;// CONCATENATED MODULE: ./src/snapshot/https.ts



const norm = (fp) => fp.replace(/[^0-9a-f]/gi, '').toUpperCase();
const cancelled = (method, url) => new errors/* DeployError */.sH('cancelled', `${method} ${url.host}${url.pathname} cancelled: the run was cancelled`);
/**
 * An HTTPS request that trusts only what the config names: a pinned CA, or a pinned certificate fingerprint
 * checked after the handshake and BEFORE any byte of the request (and its token) is sent.
 * An aborted `signal` destroys the socket at once, in the handshake or mid-answer, and rejects as `cancelled`.
 */
async function pinnedRequest(url, trust, opts) {
    const { signal } = opts;
    if (signal?.aborted)
        throw cancelled(opts.method, url);
    const port = Number(url.port || 443);
    const socket = await new Promise((resolve, reject) => {
        const s = external_node_tls_.connect({
            host: url.hostname,
            port,
            servername: /^[\d.]+$/.test(url.hostname) ? undefined : url.hostname,
            ca: trust.ca,
            rejectUnauthorized: trust.fingerprint === undefined,
        });
        const done = () => {
            clearTimeout(timer);
            signal?.removeEventListener('abort', onAbort);
        };
        const onAbort = () => {
            done();
            s.destroy();
            reject(cancelled(opts.method, url));
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        const timer = setTimeout(() => s.destroy(new Error(`TLS handshake with ${url.host} timed out after ${opts.timeoutMs}ms`)), opts.timeoutMs);
        s.once('secureConnect', () => {
            done();
            if (trust.fingerprint !== undefined) {
                const got = s.getPeerCertificate().fingerprint256 ?? '';
                if (norm(got) !== norm(trust.fingerprint)) {
                    s.destroy();
                    return reject(new errors/* DeployError */.sH('host-key', `TLS certificate of ${url.host} has fingerprint ${got}, expected ${trust.fingerprint}; refusing to send the API token`));
                }
            }
            resolve(s);
        });
        s.once('error', (err) => {
            done();
            const cls = /certificate|self.signed|CERT|verify/i.test(err.message + (err.code ?? ''))
                ? 'host-key'
                : /timed out/.test(err.message)
                    ? 'timeout'
                    : 'unreachable';
            reject(new errors/* DeployError */.sH(cls, `cannot reach ${url.host}: ${err.code ?? err.message}`));
        });
    });
    return new Promise((resolve, reject) => {
        const onAbort = () => req.destroy(cancelled(opts.method, url));
        // http.request over the already verified TLS socket: with createConnection and no agent, Node uses it as is
        // (https.request would open a fresh, unpinned connection through its own agent).
        const req = external_node_http_.request({
            method: opts.method,
            host: url.hostname,
            port,
            path: url.pathname + url.search,
            headers: opts.body
                ? { ...opts.headers, 'content-length': Buffer.byteLength(opts.body).toString() }
                : opts.headers,
            createConnection: () => socket,
        }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d) => (body += d));
            res.on('error', (err) => req.destroy(err));
            res.on('end', () => {
                signal?.removeEventListener('abort', onAbort);
                socket.destroy();
                resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', body });
            });
        });
        signal?.addEventListener('abort', onAbort, { once: true });
        req.setTimeout(opts.timeoutMs, () => req.destroy(new errors/* DeployError */.sH('timeout', `${opts.method} ${url.host}${url.pathname} timed out after ${opts.timeoutMs}ms`)));
        req.on('error', (err) => {
            signal?.removeEventListener('abort', onAbort);
            socket.destroy();
            reject(err instanceof errors/* DeployError */.sH
                ? err
                : new errors/* DeployError */.sH('unreachable', `${opts.method} ${url.host}${url.pathname}: ${err.message}`));
        });
        req.end(opts.body);
    });
}

;// CONCATENATED MODULE: ./src/snapshot/proxmox.ts



/**
 * Proxmox's own UPID grammar (PVE::Tools::upid_decode): UPID:node:pid:pstart:starttime:type:id:user:
 * with pid, pstart and starttime in hex. The node in it is where the task runs, so it is polled there.
 */
const UPID_RE = /^UPID:([a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?):[0-9A-Fa-f]{8}:[0-9A-Fa-f]{8,9}:[0-9A-Fa-f]{8}:[^:\s]+:[^:\s]*:[^:\s]+:$/;
function parseUpid(value) {
    if (typeof value !== 'string')
        return undefined;
    const m = UPID_RE.exec(value);
    return m ? { upid: value, node: m[1] } : undefined;
}
/** A task that stopped with one of these succeeded; Proxmox reports anything else as the task's error text. */
const WARNINGS_RE = /^WARNINGS: \d+$/;
/** The description this tool gives its snapshots; with the name prefix it tells ours from an operator's. */
const SNAPSHOT_DESCRIPTION_MARK = 'homelab-deploy';
/**
 * The few Proxmox VE API calls a deploy needs: snapshot create / rollback / delete / list, and task polling.
 * Proxmox answers long operations with a task id (UPID) whose status must be polled until it stops.
 */
class ProxmoxClient {
    t;
    constructor(t) {
        this.t = t;
    }
    /** "pve/qemu/101", for messages. */
    get vm() {
        return `${this.t.node}/${this.t.type}/${this.t.vmid}`;
    }
    get base() {
        return `/api2/json/nodes/${encodeURIComponent(this.t.node)}/${this.t.type}/${this.t.vmid}`;
    }
    cancelledError(what) {
        return new errors/* DeployError */.sH('cancelled', `Proxmox ${this.vm}: cancelled ${what}`);
    }
    async call(method, path, params) {
        const url = new URL(path, this.t.api);
        const body = params ? new URLSearchParams(params).toString() : undefined;
        const res = await pinnedRequest(url, this.t.trust, {
            method,
            headers: {
                authorization: `PVEAPIToken=${this.t.token}`,
                accept: 'application/json',
                ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
            },
            body,
            timeoutMs: this.t.timeoutMs,
            signal: this.t.signal,
        });
        if (res.status < 200 || res.status >= 300) {
            // Proxmox puts its message in the status line; parameter errors come as {"errors": {...}}.
            let detail = res.statusText;
            try {
                const parsed = JSON.parse(res.body);
                if (parsed.errors)
                    detail +=
                        ' ' +
                            Object.entries(parsed.errors)
                                .map(([k, v]) => `${k}: ${String(v).trim()}`)
                                .join('; ');
            }
            catch {
                /* not JSON */
            }
            const cls = res.status === 401
                ? 'auth'
                : res.status === 403
                    ? 'auth'
                    : res.status >= 500
                        ? 'command-failed'
                        : 'precondition';
            throw new errors/* DeployError */.sH(cls, `Proxmox ${method} ${url.pathname}: HTTP ${res.status} ${detail.trim()}`);
        }
        try {
            return JSON.parse(res.body).data;
        }
        catch {
            // A reverse proxy's login page or an HTML error answers 200 too; say what came back instead of a SyntaxError.
            throw new errors/* DeployError */.sH('command-failed', `Proxmox ${method} ${url.pathname}: HTTP ${res.status} but the answer is not JSON (${JSON.stringify(res.body.slice(0, 80))}); is ${this.t.api} the Proxmox API?`);
        }
    }
    /** Starts a task and checks the answer is a task id, so a wrong endpoint fails here and not in the polling. */
    async startTask(what, method, path, params) {
        const answer = await this.call(method, path, params);
        const task = parseUpid(answer);
        if (!task)
            throw new errors/* DeployError */.sH('command-failed', `Proxmox ${method} ${path} (${what} on ${this.vm}) answered ${JSON.stringify(answer)?.slice(0, 120)}, expected a task id "UPID:node:pid:pstart:starttime:type:id:user:"`);
        return task;
    }
    /**
     * Waits for a task to stop. It succeeded if it ended "OK" or "WARNINGS: n" (Proxmox's two success values;
     * the warnings' text is read from the task log); any other exit status is the task's error.
     */
    async waitTask(upid, what = 'task') {
        const task = parseUpid(upid);
        if (!task)
            throw new errors/* DeployError */.sH('command-failed', `Proxmox ${this.vm}: ${JSON.stringify(upid)} is not a task id, expected "UPID:node:..."`);
        const deadline = Date.now() + this.t.taskTimeoutMs;
        const path = `/api2/json/nodes/${encodeURIComponent(task.node)}/tasks/${encodeURIComponent(upid)}`;
        const cancelled = () => this.cancelledError(`while waiting for ${what} (task ${upid} keeps running on ${task.node})`);
        for (let poll = 0;; poll++) {
            const st = await this.call('GET', `${path}/status`).catch((err) => {
                throw err instanceof errors/* DeployError */.sH && err.errorClass === 'cancelled' ? cancelled() : err;
            });
            if (st.status === 'stopped') {
                const exit = st.exitstatus ?? '';
                if (exit === 'OK')
                    return { upid, node: task.node, exitstatus: exit };
                if (WARNINGS_RE.test(exit))
                    return { upid, node: task.node, exitstatus: exit, warnings: await this.taskWarnings(path, exit) };
                throw new errors/* DeployError */.sH('command-failed', `Proxmox ${what} on ${this.vm} failed (task ${upid}): ${exit || 'no exit status'}`);
            }
            if (Date.now() >= deadline)
                throw new errors/* DeployError */.sH('timeout', `Proxmox ${what} on ${this.vm} still running after ${this.t.taskTimeoutMs / 1000}s (task ${upid}); it keeps running on ${task.node}: check it in the Proxmox task log before retrying`);
            // Most snapshot tasks end within a second: poll fast first, then back off to pollMs.
            const pause = Math.min(100 * 2 ** poll, this.t.pollMs ?? 1000);
            await (0,duration/* sleep */.yy)(Math.min(pause, Math.max(0, deadline - Date.now())), this.t.signal);
            // Stopping the wait does not stop the task (a half-made snapshot leaves the guest locked), so say where it is.
            if (this.t.signal?.aborted)
                throw cancelled();
        }
    }
    /** The task log's warning lines; the log is a nicety, so failing to read it only loses the detail. */
    async taskWarnings(taskPath, exit) {
        try {
            const log = await this.call('GET', `${taskPath}/log?start=0&limit=500`);
            const lines = log.map((l) => l.t).filter((t) => /^WARN(ING)?:/i.test(t));
            return lines.length ? lines.slice(0, 20) : [exit];
        }
        catch (err) {
            if (err instanceof errors/* DeployError */.sH && err.errorClass === 'cancelled')
                throw err;
            return [`${exit} (task log unreadable: ${err.message})`];
        }
    }
    async createSnapshot(name, description) {
        const task = await this.startTask('snapshot', 'POST', `${this.base}/snapshot`, {
            snapname: name,
            description,
        });
        return this.waitTask(task.upid, `snapshot ${name}`);
    }
    /** Rolls the guest back to `name` and starts it if the rollback left it stopped. Returns every task it ran. */
    async rollback(name) {
        if (this.t.signal?.aborted)
            throw this.cancelledError(`before rolling back to ${name}`);
        // Once the rollback request is sent the guest may be going down whatever we do: seeing the answer, waiting for
        // the task and starting the guest again is what keeps a cancelled run from leaving the host stopped, so from
        // here on the cancellation is not honoured (the second signal still ends the process).
        const finish = new ProxmoxClient({ ...this.t, signal: undefined });
        const task = await finish.startTask(`rollback to ${name}`, 'POST', `${this.base}/snapshot/${encodeURIComponent(name)}/rollback`);
        const outcomes = [await finish.waitTask(task.upid, `rollback to ${name}`)];
        // A rollback without saved RAM state leaves the guest stopped; a deploy target must come back up.
        const status = await finish.call('GET', `${this.base}/status/current`);
        if (status.status !== 'running') {
            const start = await finish.startTask('start', 'POST', `${this.base}/status/start`);
            outcomes.push(await finish.waitTask(start.upid, 'start after rollback'));
        }
        return outcomes;
    }
    async deleteSnapshot(name) {
        const task = await this.startTask(`delete snapshot ${name}`, 'DELETE', `${this.base}/snapshot/${encodeURIComponent(name)}`);
        return this.waitTask(task.upid, `delete snapshot ${name}`);
    }
    async listSnapshots() {
        const list = await this.call('GET', `${this.base}/snapshot`);
        // "current" is the running state Proxmox lists with the snapshots, not a snapshot.
        return list.filter((s) => s.name !== 'current');
    }
    /**
     * This tool's snapshots beyond the newest `keep`, oldest last (the protected ones count towards `keep` and are
     * never returned). Ours carry the name prefix AND our description mark, so an operator's "hd-..." snapshot is safe.
     */
    async pruneCandidates(prefix, keep, protect = []) {
        const ours = (await this.listSnapshots()).filter((s) => s.name.startsWith(prefix) && (s.description ?? '').startsWith(SNAPSHOT_DESCRIPTION_MARK));
        const kept = ours.filter((s) => protect.includes(s.name)).length;
        return ours
            .filter((s) => !protect.includes(s.name))
            .sort((a, b) => (b.snaptime ?? 0) - (a.snaptime ?? 0))
            .slice(Math.max(0, keep - kept));
    }
}

;// CONCATENATED MODULE: ./src/snapshot/provider.ts





const SNAPSHOT_PREFIX = 'hd-';

/** Proxmox allows letters, digits, '-' and '_', starting with a letter, up to 40 characters. */
function provider_snapshotName(releaseId, runToken) {
    return `${SNAPSHOT_PREFIX}${releaseId}-${runToken}`.slice(0, 40);
}
const fromTasks = (outcomes) => ({
    tasks: outcomes.map((o) => o.upid),
    warnings: outcomes.flatMap((o) => o.warnings ?? []),
});
/** `shell` runs the command provider's commands on the host. */
function snapshotProvider(ctx, host, s, shell) {
    if (s.provider === 'command')
        return commandProvider(ctx, host, s, shell);
    const token = ctx.env[s.tokenEnv];
    if (!token)
        throw new errors/* DeployError */.sH('precondition', `hosts.${host.name}.snapshot.proxmox.token_env: ${s.tokenEnv} is not set or empty`, { host: host.name });
    ctx.redactor.add(token);
    const client = new ProxmoxClient({
        api: s.api,
        node: s.node,
        vmid: s.vmid,
        type: s.type,
        token,
        trust: { ca: s.caFile ? external_node_fs_.readFileSync(s.caFile, 'utf8') : undefined, fingerprint: s.fingerprint },
        timeoutMs: s.timeoutMs,
        taskTimeoutMs: s.taskTimeoutMs,
        signal: ctx.signal,
    });
    const target = `proxmox ${client.vm}`;
    const base = (action, name) => ({ action, host: host.name, provider: 'proxmox', target, name });
    return {
        describe: target,
        create: (name) => act(base('snapshot-created', name), async () => fromTasks([
            await client.createSnapshot(name, `${SNAPSHOT_DESCRIPTION_MARK} ${ctx.release.id} ${ctx.run.url ?? ''}`.trim()),
        ])),
        rollback: (name) => act(base('snapshot-rolled-back', name), async () => {
            const outcomes = await client.rollback(name);
            return { ...fromTasks(outcomes), detail: outcomes.length > 1 ? 'and started the guest' : undefined };
        }),
        prune: async (protect) => {
            const done = [];
            for (const snap of await client.pruneCandidates(SNAPSHOT_PREFIX, s.keep, protect))
                done.push(await act(base('snapshot-deleted', snap.name), async () => fromTasks([await client.deleteSnapshot(snap.name)]), done));
            return done;
        },
    };
}

// EXTERNAL MODULE: ./src/targets/ssh/commands.ts
var commands = __webpack_require__(657);
;// CONCATENATED MODULE: ./src/targets/ssh/layout.ts
/** Where a host keeps its releases and bookkeeping, relative to the host's configured path. */
const LAYOUT = {
    releases: 'releases',
    current: 'current',
    shared: 'shared',
    meta: '.homelab-deploy',
    lock: '.homelab-deploy/lock',
    lockOwner: '.homelab-deploy/lock/owner.json',
    releaseLog: '.homelab-deploy/releases.log',
    auditLog: '.homelab-deploy/audit.log',
    /** Written when a rollback failed: the host needs a human; `status` shows it until a deploy or rollback clears it. */
    needsAttention: '.homelab-deploy/needs-attention.json',
    releaseMarker: '.release.json',
    rollbackPoint: (releaseId) => `.homelab-deploy/rollback-point-${releaseId}.json`,
};

// EXTERNAL MODULE: ./src/targets/ssh/owner.ts
var ssh_owner = __webpack_require__(4116);
;// CONCATENATED MODULE: ./src/targets/ssh/scripts/common.ts


const cd = (host) => `cd ${(0,quote/* shQuote */.U)(host.path)} || exit 1`;
/**
 * Sets `$cur` to the release `current` names (empty when there is none), from the deploy path and back there:
 * `cd -P` resolves the link without a process; only a link to nowhere costs a readlink.
 */
const currentName = (host) => `cur=; if cd -P ${LAYOUT.current} 2>/dev/null; then cur=\${PWD##*/}; ${cd(host)}; elif [ -L ${LAYOUT.current} ]; then cur=$(readlink ${LAYOUT.current}); cur=\${cur##*/}; fi`;

/** The fields every host-side record carries: who, which run, which release. */
function recordBase(run, host) {
    return {
        time: new Date().toISOString(),
        host: host.name,
        release: run.release.id,
        commit: run.release.commit,
        actor: run.run.actor,
        runId: run.run.id,
        runUrl: run.run.url,
        token: run.runToken,
    };
}
/** The JSON record of an audit line (see auditLine), for scripts that write it by other means than printf. */
function auditRecord(run, host, action, extra = {}) {
    const { time, ...rest } = recordBase(run, host);
    return JSON.stringify({ time, action, ...rest, ...extra });
}
/**
 * A JSON audit line appended on the host; `rawTail` lets a script splice a shell value into the record (e.g.
 * `"previous_owner":` followed by `$prev`, a record read on the host).
 */
function auditLine(run, host, action, rawTail, extra = {}) {
    const rec = auditRecord(run, host, action, extra);
    if (rawTail === undefined)
        return `printf '%s\\n' ${(0,quote/* shQuote */.U)(rec)} >> ${LAYOUT.auditLog}`;
    return `printf '%s%s%s\\n' ${(0,quote/* shQuote */.U)(rec.slice(0, -1) + ',' + rawTail)} "\${prev:-null}" '}' >> ${LAYOUT.auditLog}`;
}
/**
 * A release-log line; `rawTail` splices one shell value (`$dur`) into the record as the last field, for figures
 * only the host can measure.
 */
function logLine(run, host, entry, rawTail) {
    const line = JSON.stringify({ ...recordBase(run, host), ...entry });
    if (rawTail === undefined)
        return `printf '%s\\n' ${(0,quote/* shQuote */.U)(line)} >> ${LAYOUT.releaseLog}`;
    return `printf '%s%s}\\n' ${(0,quote/* shQuote */.U)(line.slice(0, -1) + ',' + rawTail)} "$dur" >> ${LAYOUT.releaseLog}`;
}
/**
 * Shell test that this run's token owns the lock, with builtins only (the owner record is one line). Leaves the
 * record in `$__hd_own` for the caller to quote.
 */
const ownsLock = (run, file = LAYOUT.lockOwner) => `{ __hd_own=; read -r __hd_own < ${file}; case "$__hd_own" in *${(0,quote/* shQuote */.U)(`"token":"${run.runToken}"`)}*) true;; *) false;; esac; } 2>/dev/null`;

;// CONCATENATED MODULE: ./src/targets/ssh/scripts/env.ts

/**
 * The names a run's env-file swap keeps beside the file, so the run can undo exactly its own change: `undo`, a
 * hard link to the file it replaced; `absent`, a marker that there was none; `fromSaved`, a marker that the
 * release's copy (`.before-<release>`), made by this very swap, is the file it replaced.
 */
function envUndoNames(file, runToken) {
    return {
        undo: `${file}.undo-${runToken}`,
        absent: `${file}.absent-${runToken}`,
        fromSaved: `${file}.undo-saved-${runToken}`,
    };
}
/**
 * After the new env file was written as a 0600 temp file (fsynced) beside the old one: check its size and sha256
 * on the host, keep the old file for rollback (once per release: a re-run must not replace the pre-deploy copy
 * with this run's values), keep this run's undo (a hard link to the file being replaced, which costs no space,
 * or a marker that there was none, or that the release's copy made now is it), rename over, and make the rename
 * durable. Five processes: size, checksum, one link, rename, sync. The shell swap, for a server whose SFTP
 * cannot do it (see envSwapChanges).
 */
function envSwapStep(o) {
    const [file, tmp, saved, undo, absent, fromSaved] = [
        o.file,
        o.tmp,
        o.saved,
        o.undo,
        o.absent,
        o.fromSaved,
    ].map(quote/* shQuote */.U);
    const fail = (why) => `{ echo ${(0,quote/* shQuote */.U)(why)}; rm -f ${tmp}; exit 1; }`;
    return {
        name: 'env-swap',
        display: `verify and rename ${o.file}`,
        script: [
            `cd ${(0,quote/* shQuote */.U)(o.dir)} || exit 1`,
            // One process each for the size and the checksum: `$(...)` of a lone command runs it without a subshell.
            `s=$(wc -c < ${tmp}) && [ $s -eq ${o.size} ] || ${fail('size mismatch')}`,
            `s=$(sha256sum < ${tmp}) && [ "\${s%% *}" = ${o.sha256} ] || ${fail('checksum mismatch')}`,
            // A hard link keeps the old file whole at once (no copy half written, no space needed): the file itself is
            // only ever replaced by a rename, so the link goes on holding what it held. A copy is the fallback.
            'made=',
            `if [ -f ${file} ] && [ ! -f ${saved} ]; then { ln ${file} ${saved} 2>/dev/null || { cp -p ${file} ${(0,quote/* shQuote */.U)(`${o.saved}.tmp`)} && mv -f ${(0,quote/* shQuote */.U)(`${o.saved}.tmp`)} ${saved}; }; } && made=1 || { rm -f ${(0,quote/* shQuote */.U)(`${o.saved}.tmp`)}; ${fail(`could not keep the previous ${o.file} (no space left?)`)}; }; fi`,
            // A second write by the same run keeps the undo of the first: it must lead back to before the run. Where the
            // release's copy was made just now, it is that undo, and a marker says so (no second link).
            `if [ ! -e ${undo} ] && [ ! -e ${absent} ] && [ ! -e ${fromSaved} ]; then if [ -n "$made" ]; then : > ${fromSaved} || ${fail('could not record the undo of the env file')}; elif [ -f ${file} ]; then ln -f ${file} ${undo} 2>/dev/null || cp -p ${file} ${undo} || ${fail(`could not keep the previous ${o.file} (no space left?)`)}; else : > ${absent} || ${fail('could not record that there was no env file')}; fi; fi`,
            `mv -f ${tmp} ${file} || exit 1`,
            `sync ${file} . 2>/dev/null || sync`,
        ].join('\n'),
    };
}
/**
 * The same decisions as envSwapStep, for a swap done with SFTP requests instead of a shell on the host (no
 * process is started there): keep the old file for the release's rollback once per release, record this run's
 * undo once per run, then rename the verified temp file over. Paths are relative to the env file's folder, and
 * the changes must be made in order, each only after the one before it succeeded.
 */
function envSwapChanges(o, found) {
    const changes = [];
    const made = found.file && !found.saved;
    if (made)
        changes.push({
            kind: 'keep',
            from: o.file,
            to: o.saved,
            why: `could not keep the previous ${o.file} (no space left?)`,
        });
    if (!found.undoRecorded) {
        if (made)
            changes.push({ kind: 'mark', path: o.fromSaved, why: 'could not record the undo of the env file' });
        else if (found.file)
            changes.push({
                kind: 'keep',
                from: o.file,
                to: o.undo,
                why: `could not keep the previous ${o.file} (no space left?)`,
            });
        else
            changes.push({ kind: 'mark', path: o.absent, why: 'could not record that there was no env file' });
    }
    changes.push({ kind: 'rename', from: o.tmp, to: o.file, why: `could not rename ${o.tmp} to ${o.file}` });
    return changes;
}

;// CONCATENATED MODULE: ./src/targets/ssh/env-swap.ts



/** The OpenSSH extensions a swap over SFTP needs; a server without one of them gets the shell swap. */
const ENV_SWAP_EXTENSIONS = ['posix-rename@openssh.com', 'hardlink@openssh.com', 'fsync@openssh.com'];
/**
 * After the temp file was written (0600, fsynced, read back): keep the old file and this run's undo, rename the
 * temp file over the env file and sync the folder, all with SFTP requests on the session the write used, so the
 * host starts no process for the swap. Resolves true when the temp file is the env file now, durably; false when
 * the server lacks or refuses a request the swap needs. Nothing is then half done that the shell swap
 * (envSwapStep) cannot finish, since it decides again from what it finds beside the file.
 */
async function swapEnvOverSftp(sftp, host, n, opts) {
    const have = serverExtensions(sftp);
    if (!ENV_SWAP_EXTENSIONS.every((e) => have.has(e)))
        return false;
    const at = (f) => `${n.dir}/${f}`;
    const [file, saved, undo, absent, fromSaved] = await pathKinds(sftp, host, [n.file, n.saved, n.undo, n.absent, n.fromSaved].map(at), opts);
    const changes = envSwapChanges(n, {
        file: file === 'file',
        saved: saved === 'file',
        undoRecorded: [undo, absent, fromSaved].some((k) => k !== 'none'),
    });
    for (const change of changes) {
        try {
            await apply(sftp, host, change, at, opts);
        }
        catch (err) {
            if (isRefused(err))
                return false;
            if (err instanceof errors/* DeployError */.sH && err.errorClass !== 'command-failed')
                throw err;
            throw new errors/* DeployError */.sH('command-failed', `${change.why}: ${err.message}`, {
                host,
                cause: err,
            });
        }
    }
    await fsyncFolder(sftp, host, n.dir, opts);
    return true;
}
async function apply(sftp, host, change, at, opts) {
    switch (change.kind) {
        case 'mark':
            return createEmpty(sftp, host, at(change.path), 0o600, opts);
        case 'rename':
            return replaceFile(sftp, host, at(change.from), at(change.to), opts);
        case 'keep':
            try {
                return await hardlink(sftp, host, at(change.from), at(change.to), opts);
            }
            catch (err) {
                // A file system without hard links (some FUSE and network mounts) gets a whole copy, renamed in.
                if (isRefused(err) || (err instanceof errors/* DeployError */.sH && err.errorClass !== 'command-failed'))
                    throw err;
                return copyIn(sftp, host, at(change.from), at(change.to), opts);
            }
    }
}
async function copyIn(sftp, host, from, to, opts) {
    const data = await readFileIfExists(sftp, host, from, opts);
    if (data === undefined)
        throw new errors/* DeployError */.sH('command-failed', `SFTP read ${from} on ${host} failed`, { host });
    const tmp = `${to}.tmp`;
    await writeFile(sftp, host, tmp, data, 0o600, { fsync: true, verify: true, ...opts });
    await replaceFile(sftp, host, tmp, to, opts);
}

;// CONCATENATED MODULE: ./src/targets/ssh/rollback-point.ts



const pointFile = (run, host) => `${host.path}/${LAYOUT.rollbackPoint(run.release.id)}`;
/** The rollback point an earlier job recorded for this run's release, as the host holds it (`{}` where none). */
async function readPointOverSftp(sftp, run, host, opts) {
    const text = await readFileIfExists(sftp, host.name, pointFile(run, host), opts);
    return text?.toString('utf8').trim() || '{}';
}
/**
 * Records the rollback point with SFTP requests, as rollbackPointScript does with a shell: the record under a temp
 * name, renamed over (a reader never sees half of it), then its audit line appended. Resolves with the record, or
 * undefined when the server cannot rename over a file (no posix-rename): then the shell records it.
 */
async function recordPointOverSftp(sftp, run, host, point, opts) {
    const file = pointFile(run, host);
    if (!serverExtensions(sftp).has('posix-rename@openssh.com'))
        return undefined;
    const record = JSON.stringify(point);
    await writeFile(sftp, host.name, `${file}.tmp`, Buffer.from(`${record}\n`), 0o644, opts);
    try {
        await replaceFile(sftp, host.name, `${file}.tmp`, file, opts);
    }
    catch (err) {
        // A server that announces posix-rename but refuses it (sftp-server -P): the shell writes the temp file again.
        if (isRefused(err))
            return undefined;
        throw err;
    }
    const audit = auditRecord(run, host, 'snapshot', {
        kind: 'release',
        previous: point.previous,
        infraSnapshot: point.infraSnapshot,
    });
    await appendToFile(sftp, host.name, `${host.path}/${LAYOUT.auditLog}`, Buffer.from(`${audit}\n`), 0o644, opts);
    return record;
}

;// CONCATENATED MODULE: ./src/targets/ssh/scripts/repair.ts




/**
 * What a run that died (SIGKILL, a lost runner) or lost its channels leaves on a host, found and undone by the
 * next run once it holds the lock: its processes, its half-uploaded release, its env temp and undo files, and a
 * release-log "started" line that never got an end (the host was left between two releases). Nothing of a live
 * run can be among them: the lock is ours, and a live run's commands have their SSH session above them.
 */
/** Where the lock step leaves the record of a lock it took over, for the repair step to read. */
const takenOverRecord = (run) => `${LAYOUT.meta}/.taken-over-${run.runToken}`;
/**
 * awk over `ps -A -o pid= -o ppid= -o args=` that finds and undoes what dead runs left, with its inputs in the
 * environment (`hd_*`: `-v` would mangle backslashes in paths and records):
 * - the dead runs: the one whose lock was taken over (its token in the record at `hd_taken`), and the one whose
 *   deploy never finished: when the last release-log line that says where a deploy stands (tests records may come
 *   between "started" and its end) is a "started" line of another run, it is closed with a `failed` line (error
 *   `interrupted`) of the same run and audited;
 * - their commands, and every command of a homelab-deploy run (`timeout` or `sh -c` with an argv ending in
 *   `hd-<token>-<n>`, as SshConnection.exec starts them) that is not ours, works in this deploy path (its script
 *   names `hd_path` as a whole word: followed by a space, slash, quote, `;` or a newline, which ps shows as `?`) and
 *   has no sshd session above it (its client is gone: nobody will ever read its result); then everything below
 *   those. Other deploy paths on the same host (another project, another test) are left alone. They get TERM, and
 *   KILL after `hd_grace` polls of 0.2 s.
 * Prints a `repaired=<what>` line for each. One awk does it all, so a host with nothing to repair pays two
 * processes (ps and awk); the processes that kill and wait are only started when there is something to kill.
 */
const REPAIR_AWK = [
    'function field(s, k,   v) { v = ""; while (match(s, "\\"" k "\\":\\"[^\\"]*\\"")) { v = substr(s, RSTART + length(k) + 4, RLENGTH - length(k) - 5); s = substr(s, RSTART + RLENGTH) } return v }',
    'function here(a,   i, r, c) { r = a; while ((i = index(r, path)) > 0) { c = substr(r, i + length(path), 1); if (c == "" || index(" /\\047?;", c)) return 1; r = substr(r, i + 1) } return 0 }',
    'function live(p,   q, i) { q = P[p]; for (i = 0; i < 64 && q > 1 && (q in P); i++) { if (A[q] ~ /^sshd(-session)?: /) return 1; q = P[q] } return 0 }',
    'BEGIN {',
    '  me = ENVIRON["hd_me"]; path = ENVIRON["hd_path"]; rlog = ENVIRON["hd_log"]; taken = ENVIRON["hd_taken"]',
    '  if ((getline l < taken) > 0) { t = field(l, "token"); if (t != "") D[t] = 1 }',
    '  close(taken)',
    '  last = ""',
    '  while ((getline l < rlog) > 0) if (l ~ /"event":"(deploy|rollback|cancelled)"/) last = l',
    '  close(rlog)',
    '  t = field(last, "token")',
    '  if (last ~ /"result":"started"/ && t != "" && t != me) {',
    '    D[t] = 1; fixed = last',
    '    sub(/^\\{"time":"[^"]*"/, "{\\"time\\":\\"" ENVIRON["hd_now"] "\\"", fixed)',
    '    sub(/"result":"started"/, "\\"result\\":\\"failed\\",\\"error\\":\\"interrupted\\",\\"repairedBy\\":\\"" me "\\"", fixed)',
    '    print fixed >> rlog; close(rlog)',
    '    print ENVIRON["hd_audit"] >> ENVIRON["hd_audit_log"]; close(ENVIRON["hd_audit_log"])',
    '    print "repaired=the deploy of " field(last, "release") " by run " t " never finished (the host was left between two releases); closed in the release log"',
    '  }',
    '}',
    '{ pid = $1; P[pid] = $2; a = $0; sub(/^[ \\t]*[0-9]+[ \\t]+[0-9]+[ \\t]*/, "", a); A[pid] = a;',
    '  w = $NF; if (w ~ /^hd-.+-[0-9]+$/ && a ~ /^(timeout|(\\/bin\\/)?sh -c) /) { t = w; sub(/^hd-/, "", t); sub(/-[0-9]+$/, "", t); T[pid] = t } }',
    'END {',
    '  for (p in T) if (T[p] != me && ((T[p] in D) || (here(A[p]) && !live(p)))) { K[p] = 1; R[T[p]] = 1 }',
    '  do { c = 0; for (x in P) if (!(x in K) && (P[x] in K)) { K[x] = 1; c = 1 } } while (c)',
    '  n = 0; pids = ""; for (x in K) { n++; pids = pids " " x }',
    '  if (n > 0) {',
    '    runs = ""; for (r in R) runs = runs r " "',
    '    system("kill -TERM" pids " 2>/dev/null")',
    '    left = pids; list = pids; gsub(/^ /, "", list); gsub(/ /, ",", list)',
    '    for (i = 0; i < ENVIRON["hd_grace"] + 0; i++) {',
    '      left = ""; cmd = "ps -o pid= -o stat= -p " list " 2>/dev/null"',
    '      while ((cmd | getline l) > 0) { split(l, f, " "); if (f[2] !~ /^Z/) left = left " " f[1] }',
    '      close(cmd)',
    '      if (left == "") break',
    '      system("sleep 0.2")',
    '    }',
    '    if (left != "") system("kill -KILL" left " 2>/dev/null")',
    '    print "repaired=killed " n " processes of runs " runs',
    '  }',
    '}',
].join('\n');
/**
 * The repair step of pre-flight, run once the lock is ours: sweeps env temp files and stale lock temp dirs, runs
 * REPAIR_AWK (processes of dead runs, an unfinished deploy), removes other runs' upload folders and env undo files.
 * Prints `repaired=<what>` lines for the report. Everything but the awk is shell globs and builtins: a removal
 * costs a process only where there is something to remove.
 */
function repairScript(run, host, opts = {}) {
    const envFile = run.config.secrets?.file;
    const tok = run.runToken;
    const taken = takenOverRecord(run);
    const notOurs = (glob) => `for f in ${glob}; do [ -e "$f" ] || [ -L "$f" ] || continue; case "$f" in *-${tok}) ;; *) rm -rf -- "$f" && echo "repaired=removed $f (left by another run)";; esac; done`;
    const env = {
        hd_me: tok,
        hd_path: host.path,
        hd_taken: taken,
        hd_log: LAYOUT.releaseLog,
        hd_audit_log: LAYOUT.auditLog,
        hd_now: new Date().toISOString(),
        hd_audit: auditRecord(run, host, 'repair', { detail: 'closed an interrupted deploy' }),
        hd_grace: String((opts.graceS ?? 3) * 5),
    };
    return [
        cd(host),
        envFile
            ? `for f in ${LAYOUT.shared}/${(0,quote/* shQuote */.U)(`${envFile}.tmp-`)}*; do [ -e "$f" ] && rm -rf -- "$f" && echo "repaired=removed $f"; done`
            : 'true',
        // Another run's lock temp dir lives for an instant while it takes the lock: only one older than a minute goes.
        `for f in ${LAYOUT.meta}/lock.tmp-*; do [ -e "$f" ] || continue; find ${LAYOUT.meta} -maxdepth 1 -name 'lock.tmp-*' -mmin +1 -print -exec rm -rf {} + 2>/dev/null | sed 's/^/repaired=removed /'; break; done`,
        `ps -A -o pid= -o ppid= -o args= 2>/dev/null | ${Object.entries(env)
            .map(([k, v]) => `${k}=${(0,quote/* shQuote */.U)(v)}`)
            .join(' ')} awk ${(0,quote/* shQuote */.U)(REPAIR_AWK)}`,
        `[ ! -e ${taken} ] || rm -f ${taken}`,
        notOurs(`${LAYOUT.releases}/.incoming-*`),
        envFile ? notOurs(`${LAYOUT.shared}/${(0,quote/* shQuote */.U)(envFile)}.undo-*`) : 'true',
        envFile ? notOurs(`${LAYOUT.shared}/${(0,quote/* shQuote */.U)(envFile)}.absent-*`) : 'true',
        envFile ? notOurs(`${LAYOUT.shared}/${(0,quote/* shQuote */.U)(envFile)}.restore-*`) : 'true',
        `for f in ${LAYOUT.meta}/.switched-* ${LAYOUT.meta}/.rollback-* ${LAYOUT.meta}/.alive-*; do [ -e "$f" ] || continue; case "$f" in *-${tok}) ;; *) rm -f -- "$f";; esac; done`,
        'true',
    ].join('\n');
}
/**
 * Waits up to `waitS` seconds until no process of this run is left on the host (after a kill of all of them),
 * printing `gone`, or `left=<pids>`. The check's own shell and its `timeout` carry this run's token too: they are
 * left out by pid. pgrep writes to a file, not into $(...), whose subshell would carry the same command line and
 * match as well.
 */
function waitGoneScript(run, host, waitS) {
    const f = `${host.path}/${LAYOUT.meta}/.alive-${run.runToken}`;
    return [
        `p=${(0,quote/* shQuote */.U)(killPattern(run.runToken))}; f=${(0,quote/* shQuote */.U)(f)}; k=${(0,quote/* shQuote */.U)(`/.alive-${run.runToken}`)}; i=0`,
        'while :; do',
        '  pgrep -f "$p" > "$f"; c=; l=',
        '  while read -r x; do [ "$x" = "$$" ] || [ "$x" = "$PPID" ] || c="$c /proc/$x/cmdline"; done < "$f"',
        // Checks like this one for other hosts on the same machine carry the token too, and name the marker file: they
        // are not work of the run. grep -L lists the processes whose command line does not name it (gone ones drop out).
        '  [ -z "$c" ] || for x in $(grep -aLF "$k" $c 2>/dev/null); do x=${x#/proc/}; l="$l ${x%/cmdline}"; done',
        '  [ -z "$l" ] && { rm -f "$f"; echo gone; exit 0; }',
        `  [ $i -ge ${waitS * 5} ] && { rm -f "$f"; echo "left=$l"; exit 0; }`,
        '  sleep 0.2; i=$((i + 1))',
        'done',
    ].join('\n');
}
/**
 * After a write failed: removes what was half written and prints `free=<bytes>` for the filesystem holding `dir`,
 * so the error can say whether the disk is full and with what figures.
 */
function freeSpaceScript(dir, remove) {
    return [
        remove.length ? `rm -rf -- ${remove.map(quote/* shQuote */.U).join(' ')}` : 'true',
        `set -- $(df -Pk ${(0,quote/* shQuote */.U)(dir)} 2>/dev/null | { read -r _; read -r l; echo "$l"; })`,
        '[ -n "$4" ] && echo "free=$(( $4 * 1024 ))"',
        'true',
    ].join('\n');
}

;// CONCATENATED MODULE: ./src/targets/ssh/scripts/lock.ts




/** While a handed-over rollback runs on the host, it owns the lock: nobody else (a post step) releases it. */
const HANDOVER_PID = `${LAYOUT.lock}/rollback.pid`;
/**
 * Seconds since the owner record (or the lock directory) was last touched: the holder's heartbeat. Only a held
 * lock asks, so its processes are not on the way of a lock that is free or ours.
 */
const LOCK_AGE = `$(( $(date +%s) - $(stat -c %Y ${LAYOUT.lockOwner} 2>/dev/null || stat -c %Y ${LAYOUT.lock} 2>/dev/null || date +%s) ))`;
/** Whether a handed-over rollback still runs (its pid file names a live process); builtins only. */
const HANDOVER_RUNNING = `{ [ -f ${HANDOVER_PID} ] && __hd_hp= && read -r __hd_hp < ${HANDOVER_PID} && kill -0 "$__hd_hp"; } 2>/dev/null`;
/**
 * Takes the host's deploy lock. The lock directory appears with its owner record already inside (built under a
 * temporary name, then renamed onto the lock path, which fails while a lock exists), so another run never sees a
 * lock without an owner. A lock whose owner record has not been refreshed for lock.stale_after is taken over only
 * when the config allows it, under a second mutex so two runs cannot both take over, and the takeover is audited
 * with the previous owner's record. Prints `lock=acquired|ours|taken-over`, or exits 3 with the holder's record.
 * The script ends through `return`, never `exit 0`, so it runs in the pre-flight's own shell (see runSteps); a free
 * lock costs two processes (mkdir, mv), one that is ours none.
 */
function lockScript(run, host, owner) {
    const L = LAYOUT.lock;
    const tmp = `${L}.tmp-${run.runToken}`;
    const staleS = Math.ceil(run.config.lock.staleAfterMs / 1000);
    // A lock goes by a rename, never by emptying it in place: another run never meets a lock directory without its
    // owner record (nor replaces an empty one with its own).
    const aside = `${LAYOUT.meta}/.taken-${run.runToken}`;
    return [
        cd(host),
        `__hd_take() { mkdir ${tmp} 2>/dev/null && printf '%s\\n' ${(0,quote/* shQuote */.U)(owner)} > ${tmp}/owner.json && mv -T ${tmp} ${L} 2>/dev/null && return 0; rm -rf ${tmp}; return 1; }`,
        // The holder is named from the record read when the lock was found held, even if it has gone since.
        `__hd_held() { echo "held by:"; if [ -n "$o" ]; then printf '%s\\n' "$o"; else echo '(no owner record)'; fi; exit 3; }`,
        '__hd_lock() {',
        // A lock is never seen without its owner record, except for an instant while it changes hands: look again.
        'i=0; o=',
        'while :; do',
        // A lock with an owner record cannot be renamed over; only one without is worth the processes of a try.
        `  if [ ! -e ${LAYOUT.lockOwner} ] && __hd_take; then ${auditLine(run, host, 'lock-acquired')}; echo lock=acquired; return 0; fi`,
        `  if ${ownsLock(run)}; then echo lock=ours; return 0; fi`,
        '  o=$__hd_own',
        '  [ -n "$o" ] && break',
        // Still no owner record after half a second: a lock left so by something else; judge it by its age.
        '  [ $i -ge 10 ] && break',
        '  sleep 0.05; i=$((i + 1))',
        'done',
        `age=${LOCK_AGE}`,
        `echo "lock-age=$age"`,
        `[ "$age" -ge ${staleS} ] && [ ${run.config.lock.takeoverStale ? 'yes' : 'no'} = yes ] || __hd_held`,
        // The takeover mutex is held for milliseconds; one a killed run left behind would block takeovers for ever.
        `find ${LAYOUT.meta} -maxdepth 1 -name takeover -type d -mmin +1 -exec rmdir {} + 2>/dev/null`,
        // A rollback handed over to the host by a cancelled run holds the lock until it ends, heartbeat or not.
        `if ${HANDOVER_RUNNING}; then echo "a rollback handed over to the host is still running (pid $__hd_hp)"; __hd_held; fi`,
        `mkdir ${LAYOUT.meta}/takeover 2>/dev/null || __hd_held`,
        `age=${LOCK_AGE}`,
        // The previous owner's record stays for the repair step, which kills what that run still runs here.
        `if [ "$age" -ge ${staleS} ]; then prev=; { read -r prev < ${LAYOUT.lockOwner}; } 2>/dev/null; mv -T ${L} ${aside} 2>/dev/null && rm -rf ${aside}; if __hd_take; then rmdir ${LAYOUT.meta}/takeover; printf '%s\\n' "$prev" > ${takenOverRecord(run)}; ${auditLine(run, host, 'lock-taken-over', '"previous_owner":')}; echo lock=taken-over; return 0; fi; fi`,
        `rmdir ${LAYOUT.meta}/takeover; __hd_held`,
        '}',
        '__hd_lock',
    ].join('\n');
}
/**
 * Releases the lock only if this run owns it, and not while a rollback it handed over still runs. What this run
 * kept on the host goes with its lock, in the same `rm` as the released lock: an upload it never placed, an env
 * temp file, the undo of its env file (the cleanup has used it, or the host keeps this run's values). A release
 * costs two processes (the rename and that `rm`). Prints `released` and `current=<release>`, what this run left
 * the host on (read while the lock was still its own), so the run needs no further command to know it.
 */
function releaseLockScript(run, host) {
    const released = `${LAYOUT.meta}/.released-${run.runToken}`;
    const tok = run.runToken;
    return [
        cd(host),
        `if ${HANDOVER_RUNNING}; then echo "busy: a rollback is still running"; exit 0; fi`,
        `if ${ownsLock(run)}; then`,
        `  ${currentName(host)}`,
        '  set --',
        `  for f in ${LAYOUT.releases}/.incoming-*-${tok} ${LAYOUT.shared}/.* ${LAYOUT.shared}/*; do case "$f" in ${LAYOUT.releases}/.incoming-*) { [ -e "$f" ] || [ -L "$f" ]; } && set -- "$@" "$f";; *.tmp-${tok}|*.undo-${tok}|*.undo-saved-${tok}|*.absent-${tok}|*.restore-${tok}) set -- "$@" "$f";; esac; done`,
        // Renamed aside first, then checked: what was renamed must still be ours (else it goes back where it was).
        `  if mv -T ${LAYOUT.lock} ${released} 2>/dev/null; then`,
        `    if ${ownsLock(run, `${released}/owner.json`)}; then rm -rf -- ${released} "$@" && ${auditLine(run, host, 'lock-released')} && echo released && echo "current=$cur"`,
        `    else { [ ! -e ${LAYOUT.lock} ] && mv -T ${released} ${LAYOUT.lock}; } 2>/dev/null || echo "could not put back the lock moved to ${released}" >&2; [ $# -eq 0 ] || rm -rf -- "$@"; echo not-ours; fi`,
        '  else [ $# -eq 0 ] || rm -rf -- "$@"; echo not-ours; fi',
        'else echo not-ours; fi',
    ].join('\n');
}
/**
 * Refreshes the owner record's heartbeatAt and its mtime, which other runs read to tell a live lock from a stale
 * one; the record is replaced atomically (one process: the rename; the record is read and rewritten by the shell).
 * Prints `lost` when the lock is no longer ours.
 */
function heartbeatScript(run, host, now) {
    const key = '"heartbeatAt":"';
    return [
        cd(host),
        `${ownsLock(run)} || { echo lost; exit 0; }`,
        `r=$__hd_own; case "$r" in *${(0,quote/* shQuote */.U)(key)}*) a=\${r%%${(0,quote/* shQuote */.U)(key)}*}; b=\${r#*${(0,quote/* shQuote */.U)(key)}}; b=\${b#*'"'}; r="$a"${(0,quote/* shQuote */.U)(`${key}${now}"`)}"$b";; esac`,
        `printf '%s\\n' "$r" > ${LAYOUT.lockOwner}.hb && mv -f ${LAYOUT.lockOwner}.hb ${LAYOUT.lockOwner}`,
        'echo ours',
    ].join('\n');
}

;// CONCATENATED MODULE: ./src/targets/ssh/scripts/preflight.ts






/**
 * Pre-flight on one host, in one round trip: the runtime answers, the disk has room, what `current` names and
 * whether this release is already complete there, then the lock, taken last and only if the checks passed. Once
 * the lock is ours, what a dead run left behind is repaired (see repairScript).
 * Each step prints `key=value` lines the caller reads back.
 */
function preflightSteps(run, host, owner) {
    const p = (0,quote/* shQuote */.U)(host.path);
    const steps = [
        { name: 'runtime', script: host.runtimeCheck, display: host.runtimeCheck },
        {
            name: 'disk',
            display: `df ${host.path} >= ${(0,duration/* formatBytes */.z3)(host.minFreeDiskBytes)}`,
            script: [
                // Only a host that lacks one of the folders pays for the mkdir.
                `[ -d ${p}/${LAYOUT.releases} ] && [ -d ${p}/${LAYOUT.shared} ] && [ -d ${p}/${LAYOUT.meta} ] || mkdir -p ${p}/${LAYOUT.releases} ${p}/${LAYOUT.shared} ${p}/${LAYOUT.meta} || exit 1`,
                // df's second line, split by `read` (no pipe, no awk): the fourth field is the space available.
                'free=',
                '{ read -r _; read -r _ _ _ free _; } <<EOF',
                `$(df -Pk ${p})`,
                'EOF',
                `case "$free" in ''|*[!0-9]*) echo "df -Pk ${host.path} gave no free space figure"; exit 1;; esac`,
                'free=$(( free * 1024 ))',
                'echo "free=$free"',
                `[ "$free" -ge ${host.minFreeDiskBytes} ] || exit 1`,
            ].join('\n'),
        },
        {
            name: 'state',
            display: 'readlink current',
            script: [
                cd(host),
                currentName(host),
                'echo "current=$cur"',
                `[ -f ${LAYOUT.releases}/${run.release.id}/${LAYOUT.releaseMarker} ] && echo complete=yes || echo complete=no`,
            ].join('\n'),
        },
        { name: 'lock', display: `mkdir ${LAYOUT.lock}`, script: lockScript(run, host, owner) },
    ];
    steps.push({
        name: 'sweep',
        display: 'repair what dead runs left (processes, uploads, temp files, unfinished deploys)',
        script: repairScript(run, host),
    });
    return steps;
}
/** The `key=value` lines of a pre-flight's output. */
function preflightValues(outputs) {
    const kv = {};
    for (const text of Object.values(outputs))
        for (const line of text.split('\n')) {
            const i = line.indexOf('=');
            if (i > 0)
                kv[line.slice(0, i).trim()] = line.slice(i + 1).trim();
        }
    return kv;
}

// EXTERNAL MODULE: ./src/run/release.ts
var release = __webpack_require__(800);
;// CONCATENATED MODULE: ./src/targets/ssh/scripts/release.ts








/** Where a release is uploaded before it is placed; per run, so two runs never write into each other's upload. */
const incomingDir = (run) => `${LAYOUT.releases}/.incoming-${run.release.id}-${run.runToken}`;
/**
 * The next `current`, made with the upload (a symlink to the release, relative to the deploy path) and renamed
 * onto `current` by the switch. Named like an upload, so what removes a dead run's uploads removes it too.
 */
const incomingCurrent = (run) => `${LAYOUT.releases}/.incoming-current-${run.release.id}-${run.runToken}`;
/** What a release's link to the env file points at, relative to the release directory. */
const envLink = (envFile) => `../../${LAYOUT.shared}/${(0,quote/* shQuote */.U)(envFile)}`;
/**
 * Makes the uploaded release current: place it (a complete release has its marker), link the env file into it,
 * write a "started" line to the release log before `current` moves (so a host is never between two releases
 * without a record), switch `current` atomically, then run the stack's up command in the release directory.
 */
function deploySteps(run, host, stage, previous, made = {}) {
    const id = run.release.id;
    const tmp = incomingDir(run);
    const envFile = run.config.secrets?.file;
    return [
        {
            name: 'place',
            display: `releases/${id}`,
            script: [
                cd(host),
                // An earlier, incomplete copy of the release is only removed where there is one.
                `if [ -d ${(0,quote/* shQuote */.U)(tmp)} ]; then { [ ! -e ${LAYOUT.releases}/${id} ] && [ ! -L ${LAYOUT.releases}/${id} ]; } || rm -rf ${LAYOUT.releases}/${id} || exit 1; mv ${(0,quote/* shQuote */.U)(tmp)} ${LAYOUT.releases}/${id} || exit 1; fi`,
                `[ -f ${LAYOUT.releases}/${id}/${LAYOUT.releaseMarker} ] || { echo "release ${id} is incomplete on this host"; exit 1; }`,
                envFile && !made.envLinked
                    ? `ln -sfn ${envLink(envFile)} ${LAYOUT.releases}/${id}/${(0,quote/* shQuote */.U)(envFile)}`
                    : 'true',
            ].join('\n'),
        },
        {
            name: 'switch',
            display: `current -> releases/${id}`,
            script: [
                cd(host),
                logLine(run, host, { event: 'deploy', stage, previous, result: 'started' }),
                auditLine(run, host, 'deploy', undefined, { stage, previous }),
                // A deploy or rollback that reaches the switch supersedes an earlier failed rollback's warning.
                `[ ! -e ${LAYOUT.needsAttention} ] || rm -f ${LAYOUT.needsAttention}`,
                made.currentLinked
                    ? `if [ -L ${incomingCurrent(run)} ]; then mv -Tf ${incomingCurrent(run)} ${LAYOUT.current}; else ln -sfn ${LAYOUT.releases}/${id} .current.tmp && mv -Tf .current.tmp ${LAYOUT.current}; fi`
                    : `ln -sfn ${LAYOUT.releases}/${id} .current.tmp && mv -Tf .current.tmp ${LAYOUT.current}`,
            ].join('\n'),
        },
        {
            name: 'up',
            display: (0,commands/* upCommand */.Pl)(host.deploy, run.config.project),
            script: [
                `cd ${(0,quote/* shQuote */.U)(host.path)}/${LAYOUT.releases}/${id} || exit 1`,
                (0,quote/* shExports */.T)((0,commands/* releaseEnv */.Db)(host, run.config.project, run.release, stage)),
                (0,commands/* upCommand */.Pl)(host.deploy, run.config.project),
            ].join('\n'),
        },
    ];
}
/**
 * Returns a host to `to` (a release id) or, when this was the first deploy, stops the stack and removes `current`.
 * Restores the env file saved by this run's secrets phase. A host whose `current` already names `to` (the run
 * stopped before switching it) keeps its stack as it runs: nothing of the new release was started there.
 */
function rollbackSteps(run, host, stage, to) {
    if (to !== null && !release/* RELEASE_ID_RE */._.test(to))
        throw new errors/* DeployError */.sH('precondition', `rollback target ${JSON.stringify(to)} on ${host.name} is not a release id`, { host: host.name });
    const envFile = run.config.secrets?.file;
    const clock = (0,quote/* shQuote */.U)(`${LAYOUT.meta}/.rollback-${run.runToken}`);
    const switched = (0,quote/* shQuote */.U)(`${LAYOUT.meta}/.switched-${run.runToken}`);
    const steps = [
        // The switch marker outlives a failed attempt (a lost session, say): a second attempt then still runs `up`.
        { name: 'start', display: 'rollback', script: `${cd(host)}\ndate +%s%N > ${clock}` },
    ];
    if (envFile)
        steps.push({
            name: 'restore-env',
            display: `restore ${envFile}`,
            script: restoreEnvScript(run, host, envFile),
        });
    if (to) {
        steps.push({
            name: 'switch',
            display: `current -> releases/${to}`,
            script: [
                cd(host),
                `[ -f ${LAYOUT.releases}/${to}/${LAYOUT.releaseMarker} ] || { echo "rollback target ${to} is missing on this host (releases/${to} has no ${LAYOUT.releaseMarker})"; exit 1; }`,
                // Whether `current` already leads to `to`, by the folders both resolve to (`cd -P`: no process).
                `a=; b=; if cd -P ${LAYOUT.current} 2>/dev/null; then a=$PWD; ${cd(host)}; fi; if cd -P ${LAYOUT.releases}/${to}; then b=$PWD; ${cd(host)}; fi`,
                `if [ -n "$a" ] && [ "$a" = "$b" ]; then echo "already on ${to}"`,
                `else ln -sfn ${LAYOUT.releases}/${to} .current.tmp && mv -Tf .current.tmp ${LAYOUT.current} && : > ${switched}; fi`,
            ].join('\n'),
        }, {
            name: 'up',
            display: (0,commands/* upCommand */.Pl)(host.deploy, run.config.project),
            script: [
                cd(host),
                `[ -f ${switched} ] || { echo "the stack of ${to} was never replaced; left running"; exit 0; }`,
                `cd ${LAYOUT.releases}/${to} || exit 1`,
                (0,quote/* shExports */.T)((0,commands/* releaseEnv */.Db)(host, run.config.project, { id: to, commit: '' }, stage)),
                (0,commands/* upCommand */.Pl)(host.deploy, run.config.project),
            ].join('\n'),
        });
    }
    else {
        const down = (0,commands/* downCommand */.wq)(host.deploy, run.config.project);
        steps.push({
            name: 'down',
            display: down ?? 'remove current',
            script: [
                cd(host),
                down
                    ? `if [ -d ${LAYOUT.current}/ ]; then (cd ${LAYOUT.current}/ && ${(0,quote/* shExports */.T)((0,commands/* releaseEnv */.Db)(host, run.config.project, run.release, stage))}\n${down}) || exit 1; fi`
                    : 'true',
                `rm -f ${LAYOUT.current}`,
            ].join('\n'),
        });
    }
    steps.push({
        name: 'log',
        display: 'release log',
        script: [
            cd(host),
            `t0=; { read -r t0 < ${clock}; } 2>/dev/null`,
            `dur=$(( ( $(date +%s%N) - \${t0:-0} ) / 1000000 )); [ -n "$t0" ] || dur=null`,
            // One rm for the clock, the markers and this run's undo files of the env file.
            `rm -f ${clock} ${LAYOUT.needsAttention} ${switched}${envFile ? ` ${undoFiles(run, envFile)}` : ''}`,
            logLine(run, host, { event: 'rollback', stage, to, result: 'rolled_back' }, '"durationMs":'),
            auditLine(run, host, 'rollback', undefined, { stage, to }),
        ].join('\n'),
    });
    return steps;
}
/**
 * The rollback of a cancelled run, detached on the host: the runner is about to be killed, and killing a stack's
 * `up` half way would leave the host worse off than either release. It runs in its own session, outside our
 * commands' process groups (which the cancellation kills), releases the lock itself when done, and the caller
 * waits only `waitS` seconds for its result.
 */
function handOverScript(run, host, stage, to, waitS) {
    const logPath = `${LAYOUT.meta}/rollback-${run.runToken}.log`;
    const logFile = (0,quote/* shQuote */.U)(logPath);
    const rcFile = (0,quote/* shQuote */.U)(`${LAYOUT.meta}/rollback-${run.runToken}.rc`);
    const body = [...rollbackSteps(run, host, stage, to).map((st) => `( ${st.script}\n) || exit 1`), ''].join('\n');
    // `( ... & )`: the subshell exits at once, so the detached shell is nobody's child and no kill of ours finds it.
    const detached = [
        `cd ${(0,quote/* shQuote */.U)(host.path)} && echo $$ > ${HANDOVER_PID}`,
        `sh -c ${(0,quote/* shQuote */.U)(body)}`,
        `rc=$?; cd ${(0,quote/* shQuote */.U)(host.path)} && echo "$rc" > ${rcFile}; rm -f ${HANDOVER_PID}`,
        // Nobody may be waiting any more when it fails: the host says so itself, until a deploy or rollback.
        'if [ "$rc" != 0 ]; then',
        needsAttentionScript(run, host, {
            time: new Date().toISOString(),
            reason: 'rollback-failed',
            release: run.release.id,
            rollbackTo: to,
            error: `the rollback handed over to the host when the run was cancelled failed; its log is ${host.path}/${logPath}`,
            runId: run.run.id,
            runUrl: run.run.url,
        }),
        'fi',
        releaseLockScript(run, host),
    ].join('\n');
    const script = [
        cd(host),
        `rm -f ${rcFile}`,
        `(setsid nohup sh -c ${(0,quote/* shQuote */.U)(detached)} > ${logFile} 2>&1 < /dev/null &)`,
        `i=0; while [ ! -s ${rcFile} ] && [ $i -lt ${waitS * 5} ]; do sleep 0.2; i=$((i + 1)); done`,
        `if [ -s ${rcFile} ]; then echo "rc=$(cat ${rcFile})"; else echo rc=running; fi`,
        `tail -c 2000 ${logFile} 2>/dev/null`,
    ].join('\n');
    return { script, logPath };
}
/**
 * A rollback's env file: the one kept from before this release first came to the host (by whichever job wrote
 * it), put back atomically. On a full disk the copy is a hard link, which needs no space.
 */
function restoreEnvScript(run, host, envFile) {
    const file = `${LAYOUT.shared}/${envFile}`;
    const saved = (0,quote/* shQuote */.U)(`${file}.before-${run.release.id}`);
    const restore = (0,quote/* shQuote */.U)(`${file}.restore`);
    return [
        cd(host),
        `if [ -f ${saved} ]; then { cp -p ${saved} ${restore} 2>/dev/null || { rm -f ${restore}; ln -f ${saved} ${restore}; }; } && mv -f ${restore} ${(0,quote/* shQuote */.U)(file)} && ${auditLine(run, host, 'env-restored', undefined, { file: envFile })}; fi`,
    ].join('\n');
}
/** This run's undo files of the env file (see envSwapStep), as shell words relative to the deploy path. */
const undoFiles = (run, envFile) => Object.values(envUndoNames(envFile, run.runToken))
    .map((f) => `${LAYOUT.shared}/${(0,quote/* shQuote */.U)(f)}`)
    .join(' ');
/**
 * Undoes exactly this run's change of the env file, for a run that ends without keeping it (aborted, or the host
 * not on the new release): the file it replaced comes back by a rename (no space needed), or the file goes if
 * there was none; a temp file of this run is removed too. Nothing happens where this run changed nothing.
 */
function undoEnvScript(run, host, envFile) {
    const file = (0,quote/* shQuote */.U)(`${LAYOUT.shared}/${envFile}`);
    const { undo, absent, fromSaved } = envUndoNames(envFile, run.runToken);
    const u = (0,quote/* shQuote */.U)(`${LAYOUT.shared}/${undo}`);
    const a = (0,quote/* shQuote */.U)(`${LAYOUT.shared}/${absent}`);
    const fs = (0,quote/* shQuote */.U)(`${LAYOUT.shared}/${fromSaved}`);
    const saved = (0,quote/* shQuote */.U)(`${LAYOUT.shared}/${envFile}.before-${run.release.id}`);
    const back = (0,quote/* shQuote */.U)(`${LAYOUT.shared}/${envFile}.restore-${run.runToken}`);
    const tmp = (0,quote/* shQuote */.U)(`${LAYOUT.shared}/${envFile}.tmp-${run.runToken}`);
    const audit = (how) => auditLine(run, host, 'env-restored', undefined, { file: envFile, how });
    return [
        cd(host),
        `[ ! -e ${tmp} ] || rm -f ${tmp}`,
        `if [ -e ${a} ]; then rm -f ${file} && rm -f ${a} && ${audit('removed: there was none before this run')} && echo restored; fi`,
        // A rename onto a hard link of the same file does nothing: the undo then only goes.
        `if [ -f ${u} ]; then mv -f ${u} ${file} && rm -f ${u} && ${audit('put back the file this run replaced')} && echo restored; fi`,
        // The release's copy stays (a later rollback of the release needs it): a second link to it is renamed over.
        `if [ -e ${fs} ]; then ln -f ${saved} ${back} && mv -f ${back} ${file} && rm -f ${fs} && ${audit('put back the file this run replaced')} && echo restored; fi`,
        'true',
    ].join('\n');
}
/**
 * Keeps the newest `keep_releases` releases; never removes the current release or one in `protect` (the rollback
 * target). A pruned release takes its bookkeeping with it: its rollback point and the env file kept for its
 * rollback (which holds secrets nobody will need again).
 */
function pruneScript(run, host, protect) {
    const keep = protect
        .filter(Boolean)
        .map((k) => `-e ${(0,quote/* shQuote */.U)(`^${k}$`)}`)
        .join(' ');
    const envFile = run.config.secrets?.file;
    const forget = [
        `rm -rf -- "$r"`,
        `rm -f -- ../${LAYOUT.rollbackPoint('"$r"')}`,
        envFile ? `rm -f -- ../${LAYOUT.shared}/${(0,quote/* shQuote */.U)(`${envFile}.before-`)}"$r"` : '',
    ]
        .filter(Boolean)
        .join('; ');
    return [
        cd(host),
        `cd ${LAYOUT.releases} || exit 0`,
        // Counted by a glob first: only a host with more than keep_releases releases pays for the pipeline.
        `set -- */${LAYOUT.releaseMarker}; [ -e "$1" ] || set --`,
        // Oldest first by marker mtime; the newest keep_releases survive.
        `[ $# -le ${host.keepReleases} ] || ls -1tr */${LAYOUT.releaseMarker} 2>/dev/null | sed 's#/.*##' | head -n -${host.keepReleases} | { ${keep ? `grep -v ${keep}` : 'cat'} || true; } | while read -r r; do ${forget}; done`,
        // Uploads of runs that died an hour ago or more; a glob says first whether there is any upload at all.
        `for d in .incoming-*; do [ -e "$d" ] || [ -L "$d" ] || continue; find . -maxdepth 1 -name '.incoming-*' -mmin +60 -exec rm -rf {} + 2>/dev/null; break; done`,
        'true',
    ].join('\n');
}
/**
 * Records what a rollback of this release returns to; later jobs of the workflow read it back. `point` undefined
 * means the host already runs this release (a later job, or a re-run after a partial deploy): then the record an
 * earlier run wrote is kept, because the release it names is the one to go back to. Otherwise a fresh deploy
 * starts and any old record of the same release id (from a deploy weeks ago) is replaced. Prints the record.
 */
function rollbackPointScript(run, host, point) {
    const file = LAYOUT.rollbackPoint(run.release.id);
    // The record is printed by the shell (`read`, printf), not by cat: one process fewer.
    if (point === undefined)
        return [
            cd(host),
            `if [ -f ${file} ]; then while read -r l || [ -n "$l" ]; do printf '%s\\n' "$l"; done < ${file}; else echo '{}'; fi`,
        ].join('\n');
    const rec = (0,quote/* shQuote */.U)(JSON.stringify(point));
    return [
        cd(host),
        `printf '%s\\n' ${rec} > ${file}.tmp && mv -f ${file}.tmp ${file} && printf '%s\\n' ${rec}`,
        auditLine(run, host, 'snapshot', undefined, {
            kind: 'release',
            previous: point.previous,
            infraSnapshot: point.infraSnapshot,
        }),
    ].join('\n');
}
const readCurrentScript = (host) => `${cd(host)}\n${currentName(host)}\n[ -z "$cur" ] || echo "$cur"`;
/** A host whose rollback failed is marked for a human; `status` shows the record until a deploy or rollback. */
function needsAttentionScript(run, host, record) {
    return [
        cd(host),
        `printf '%s\\n' ${(0,quote/* shQuote */.U)(JSON.stringify(record))} > ${LAYOUT.needsAttention}.tmp && mv -f ${LAYOUT.needsAttention}.tmp ${LAYOUT.needsAttention}`,
        auditLine(run, host, 'needs-attention', undefined, record),
    ].join('\n');
}

;// CONCATENATED MODULE: ./src/targets/ssh/scripts/tests.ts

/** Grace for the test command after TERM before KILL. */
const TESTS_KILL_AFTER_S = 5;
/**
 * Runs a stage's tests on the host in the release directory: delete the old JUnit file, run the tests under their
 * own `timeout` (so a timeout still returns the output, and the remote processes are killed), then print the exit
 * code and the JUnit file's <testsuite(s)> opening tags after a marker. Only those tags are sent back: the JUnit
 * reader needs nothing else, and a large report would not fit the captured output. A JUnit path is relative to the
 * release directory, or absolute; tests inside a container must write it to a path mounted from the host.
 */
function testsScript(o) {
    const seconds = Math.max(1, Math.ceil(o.timeoutMs / 1000));
    const junit = o.junit ? (0,quote/* shQuote */.U)(o.junit) : undefined;
    return [
        `cd ${(0,quote/* shQuote */.U)(`${o.host.path}/current`)} || exit 1`,
        (0,quote/* shExports */.T)(o.env),
        junit ? `rm -f -- ${junit}` : '',
        `t0=$(date +%s)`,
        `timeout -k ${TESTS_KILL_AFTER_S} ${seconds} sh -c ${(0,quote/* shQuote */.U)(o.command)} </dev/null`,
        'rc=$?',
        // 124: timeout sent TERM; 137 after the limit: it had to send KILL.
        `if [ "$rc" -eq 124 ] || { [ "$rc" -eq 137 ] && [ $(( $(date +%s) - t0 )) -ge ${seconds} ]; }; then rc=timeout; fi`,
        `printf '\\n%s\\n' "${o.mark}rc=$rc"`,
        junit
            ? `if [ -f ${junit} ]; then printf '%s\\n' "${o.mark}junit"; tr '\\r\\n' '  ' < ${junit} | grep -o '<testsuites\\{0,1\\}\\([[:space:]][^>]*\\)\\{0,1\\}>'; fi`
            : '',
        'exit 0',
    ]
        .filter(Boolean)
        .join('\n');
}
/** Reads the marker trailer testsScript prints. */
function parseTestsOutput(stdout, stderr, code, mark) {
    const at = stdout.lastIndexOf(`\n${mark}rc=`);
    if (at < 0)
        return { exitCode: code === 0 ? null : code, output: stdout + stderr, timedOut: false };
    const trailer = stdout.slice(at + 1);
    const rc = /rc=(\w+)/.exec(trailer)?.[1];
    const j = trailer.indexOf(`${mark}junit\n`);
    return {
        exitCode: rc === undefined || rc === 'timeout' ? null : Number(rc),
        output: stdout.slice(0, at) + stderr,
        timedOut: rc === 'timeout',
        junitXml: j >= 0 ? trailer.slice(j + mark.length + 6) : undefined,
    };
}

;// CONCATENATED MODULE: ./src/targets/ssh/snapshot-audit.ts


/** The audit-log line(s) for snapshot actions, as a script fragment; it runs in the host's deploy path. */
function snapshotAuditScript(run, host, actions) {
    return actions
        .map((a) => auditLine(run, host, a.action, undefined, {
        time: a.time,
        provider: a.provider,
        target: a.target,
        snapshot: a.name,
        ok: a.ok,
        durationMs: a.durationMs,
        tasks: a.tasks,
        warnings: a.warnings,
        error: a.error,
    }))
        .join('\n');
}
/**
 * Appends snapshot actions to the host's .homelab-deploy/audit.log (one round trip). Call it when the host can be
 * written to: after a VM rollback that is once the guest is back, and after it, since the rollback rewound the disk.
 */
async function auditSnapshotActions(run, host, shell, actions) {
    if (actions.length === 0)
        return;
    const res = await shell.exec([
        `cd ${(0,quote/* shQuote */.U)(host.path)} || exit 1`,
        'mkdir -p .homelab-deploy || exit 1',
        snapshotAuditScript(run, host, actions),
    ].join('\n'), { timeoutMs: 30_000 });
    if (res.code !== 0)
        throw new Error(`appending ${actions.length} snapshot audit line(s) to ${host.path}/.homelab-deploy/audit.log on ${host.name} exited ${res.code}: ${(res.stderr || res.stdout).trim().slice(-200)}`);
}

// EXTERNAL MODULE: external "node:os"
var external_node_os_ = __webpack_require__(8161);
;// CONCATENATED MODULE: ./src/targets/ssh/status.ts






/** Reading a host's state for operators (`status`, `lock status`, `lock release`): one round trip, no changes. */
const MARK = '@@hd-inspect@@';
const RECENT = 10;
/** Shell that prints the lock's heartbeat age and owner record, if the lock exists; runs in the deploy path. */
const lockProbe = [
    `if [ -d ${LAYOUT.lock} ]; then`,
    `  echo "${MARK}lock-age=$(( $(date +%s) - $(stat -c %Y ${LAYOUT.lockOwner} 2>/dev/null || stat -c %Y ${LAYOUT.lock} 2>/dev/null || date +%s) ))"`,
    `  printf '${MARK}owner=%s\\n' "$(cat ${LAYOUT.lockOwner} 2>/dev/null | tr -d '\\n')"`,
    'fi',
].join('\n');
function marked(stdout) {
    return stdout
        .split('\n')
        .filter((l) => l.startsWith(MARK))
        .map((l) => l.slice(MARK.length));
}
const values = (lines, key) => lines.filter((l) => l.startsWith(key + '=')).map((l) => l.slice(key.length + 1));
function jsonLines(texts) {
    return texts.flatMap((t) => {
        try {
            const v = JSON.parse(t);
            return v && typeof v === 'object' ? [v] : [];
        }
        catch {
            return [];
        }
    });
}
function lockState(config, lines) {
    const age = values(lines, 'lock-age')[0];
    if (age === undefined)
        return { held: false };
    const staleAfterSeconds = Math.ceil(config.lock.staleAfterMs / 1000);
    const heartbeatAgeSeconds = Number(age);
    return {
        held: true,
        owner: (0,ssh_owner/* parseOwner */.p)(values(lines, 'owner')[0] ?? '') ?? null,
        heartbeatAgeSeconds,
        stale: heartbeatAgeSeconds >= staleAfterSeconds,
        staleAfterSeconds,
    };
}
async function readStatus(run, h, shell) {
    const config = run.config;
    const name = h.name;
    const res = await shell.exec([
        `cd ${(0,quote/* shQuote */.U)(h.path)} 2>/dev/null || { echo "${MARK}empty"; exit 0; }`,
        `t=$(readlink ${LAYOUT.current} 2>/dev/null); echo "${MARK}current=\${t##*/}"`,
        lockProbe,
        `tail -n 200 ${LAYOUT.releaseLog} 2>/dev/null | sed 's/^/${MARK}log=/'`,
        `for f in $(ls -1t ${LAYOUT.meta}/rollback-point-*.json 2>/dev/null | head -n 10); do printf '${MARK}point=%s\\n' "$(tr -d '\\n' < "$f")"; done`,
        `ls -1t ${LAYOUT.releases}/*/${LAYOUT.releaseMarker} 2>/dev/null | sed 's#^${LAYOUT.releases}/##; s#/.*##; s/^/${MARK}release=/'`,
        `tail -n 500 ${SNAPSHOT_RECORD} 2>/dev/null | sed 's/^/${MARK}snap=/'`,
        `[ -f ${LAYOUT.needsAttention} ] && printf '${MARK}attention=%s\\n' "$(tr -d '\\n' < ${LAYOUT.needsAttention})"`,
        'true',
    ].join('\n'), { timeoutMs: 20_000 });
    const lines = marked(res.stdout);
    if (lines.includes('empty'))
        return {
            host: name,
            kind: 'ssh',
            reachable: true,
            empty: true,
            current: null,
            previous: null,
            lock: { held: false },
        };
    const current = values(lines, 'current')[0] || null;
    const logs = jsonLines(values(lines, 'log'));
    const points = jsonLines(values(lines, 'point'));
    const previous = previousOf(current, points, logs);
    return {
        host: name,
        kind: 'ssh',
        reachable: true,
        current,
        previous,
        lock: lockState(config, lines),
        recent: logs.slice(-RECENT),
        rollbackPoints: points,
        releases: values(lines, 'release'),
        snapshots: liveSnapshots(values(lines, 'snap').join('\n')),
        needsAttention: jsonLines(values(lines, 'attention'))[0] ??
            interruptedDeploy(logs, lockState(config, lines)),
    };
}
/**
 * What a rollback of `current` returns to: its rollback point, or else the release log's line that deployed it.
 */
function previousOf(current, points, logs) {
    const point = points.find((p) => p.release === current);
    if (point && point.previous !== undefined)
        return point.previous;
    const deployedLine = logs.filter((l) => l.result === 'deployed' && l.release === current).pop();
    return deployedLine?.previous ?? null;
}
/**
 * What a rollback by hand must know, and no more: the current release, what its rollback returns to, and the
 * releases on the host. Shell builtins but for the release log's tail, which is read only where the current
 * release has no rollback point: one process where `status` starts a dozen (the manual rollback of a fleet
 * reads this on every host).
 */
async function readRollbackFacts(h, shell) {
    const point = `${LAYOUT.meta}/rollback-point-"$cur".json`;
    const res = await shell.exec([
        `cd ${(0,quote/* shQuote */.U)(h.path)} 2>/dev/null || { echo "${MARK}empty"; exit 0; }`,
        currentName(h),
        `echo "${MARK}current=$cur"`,
        `if [ -n "$cur" ] && [ -f ${point} ]; then while read -r l || [ -n "$l" ]; do printf '${MARK}point=%s\\n' "$l"; done < ${point}`,
        `else tail -n 200 ${LAYOUT.releaseLog} 2>/dev/null | sed 's/^/${MARK}log=/'; fi`,
        `for f in ${LAYOUT.releases}/*/${LAYOUT.releaseMarker}; do [ -e "$f" ] || continue; f=\${f#${LAYOUT.releases}/}; printf '${MARK}release=%s\\n' "\${f%%/*}"; done`,
        'true',
    ].join('\n'), { timeoutMs: 20_000 });
    const lines = marked(res.stdout);
    if (lines.includes('empty'))
        return { current: null, previous: null, releases: [] };
    const current = values(lines, 'current')[0] || null;
    const previous = previousOf(current, jsonLines(values(lines, 'point')), jsonLines(values(lines, 'log')));
    return { current, previous, releases: values(lines, 'release') };
}
/**
 * A host left between two releases: its release log ends with a deploy's "started" line (written just before
 * `current` moves) and no run is still at it (the lock is gone, stale, or another run's). The run that started it
 * died or lost the host before it could record a failed rollback there; the next deploy repairs it.
 */
function interruptedDeploy(logs, lock) {
    // The last line that says where a deploy stands (tests records may come between "started" and its end).
    const last = logs.filter((l) => ['deploy', 'rollback', 'cancelled'].includes(String(l.event))).pop();
    if (!last || last.result !== 'started')
        return undefined;
    if (lock.held && !lock.stale && lock.owner?.token === last.token)
        return undefined;
    return {
        reason: 'interrupted-deploy',
        time: last.time,
        release: last.release,
        previous: last.previous ?? null,
        runId: last.runId,
        runUrl: last.runUrl,
        token: last.token,
        detail: `the deploy of ${String(last.release)} started at ${String(last.time)} never finished: the host may run either release or a mix; the next deploy repairs it, or roll back by hand`,
    };
}
/**
 * Operator override (`lock release`). A lock whose heartbeat is fresh belongs to a run that is probably still
 * deploying, so it is refused unless `force`. The decision is re-checked on the host in the same script that
 * removes the lock: the owner record must be the one judged, and (without force) still stale. The lock
 * directory is first renamed aside, so a run that takes the lock a moment later gets a new directory we never
 * touch. Every release is appended to the host's audit log with the previous owner's record.
 */
async function operatorReleaseLock(run, h, shell, opts) {
    const config = run.config;
    const name = h.name;
    const cd = `cd ${(0,quote/* shQuote */.U)(h.path)} 2>/dev/null || { echo "${MARK}empty"; exit 0; }`;
    const probe = await shell.exec([cd, lockProbe].join('\n'), { timeoutMs: 20_000 });
    const lines = marked(probe.stdout);
    const lock = lockState(config, lines);
    if (!lock.held)
        return { host: name, outcome: 'free', lock };
    if (!lock.stale && !opts.force)
        return { host: name, outcome: 'refused-live', lock };
    const ownerText = values(lines, 'owner')[0] ?? '';
    const record = JSON.stringify({
        time: new Date().toISOString(),
        action: 'lock-released',
        host: name,
        operator: opts.operator,
        forced: opts.force,
        stale: lock.stale,
        heartbeatAgeSeconds: lock.heartbeatAgeSeconds,
        from: external_node_os_.hostname(),
        via: 'homelab-deploy lock release',
        previous_owner: lock.owner ?? (ownerText || null),
    });
    const aside = `${LAYOUT.meta}/lock.released-$$`;
    const staleS = lock.staleAfterSeconds;
    const r = await shell.exec([
        cd,
        `[ -d ${LAYOUT.lock} ] || { echo "${MARK}result=free"; exit 0; }`,
        `owner=$(cat ${LAYOUT.lockOwner} 2>/dev/null | tr -d '\\n')`,
        `[ "$owner" = ${(0,quote/* shQuote */.U)(ownerText)} ] || { echo "${MARK}result=changed"; exit 0; }`,
        opts.force
            ? 'true'
            : `age=$(( $(date +%s) - $(stat -c %Y ${LAYOUT.lockOwner} 2>/dev/null || stat -c %Y ${LAYOUT.lock} 2>/dev/null || date +%s) )); [ "$age" -ge ${staleS} ] || { echo "${MARK}result=changed"; exit 0; }`,
        `mv ${LAYOUT.lock} "${aside}" 2>/dev/null || { echo "${MARK}result=changed"; exit 0; }`,
        // Renamed something else than we judged (released and re-taken in between): put it back untouched.
        `if [ "$(cat "${aside}/owner.json" 2>/dev/null | tr -d '\\n')" != "$owner" ]; then { [ ! -e ${LAYOUT.lock} ] && mv "${aside}" ${LAYOUT.lock}; } || echo "could not put back the lock moved to ${h.path}/${aside}" >&2; echo "${MARK}result=changed"; exit 0; fi`,
        `rm -rf "${aside}" || exit 1`,
        `printf '%s\\n' ${(0,quote/* shQuote */.U)(record)} >> ${LAYOUT.auditLog} || { echo "lock removed but ${h.path}/${LAYOUT.auditLog} is not writable" >&2; exit 1; }`,
        `echo "${MARK}result=released"`,
    ].join('\n'), { timeoutMs: 20_000 });
    const result = values(marked(r.stdout), 'result')[0];
    if (r.code !== 0 || !result)
        return {
            host: name,
            outcome: 'error',
            lock,
            error: `releasing the lock in ${h.path} exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(-300)}`,
        };
    return { host: name, outcome: result, lock };
}

// EXTERNAL MODULE: ./src/config/templates.ts
var templates = __webpack_require__(9205);
;// CONCATENATED MODULE: ./src/targets/ssh/vars.ts

/**
 * The `{{...}}` variables of an SSH host's checks and commands, for `release` (this run's, or the version a
 * rollback returns to): the names config/templates.ts declares, so `validate` checks exactly what runs. The host's
 * own values come from `host` itself, which may differ from the config's entry (tests aim a host at loopback).
 */
function sshTemplateVars(ctx, host, stage, release = ctx.release.id) {
    return {
        ...(0,templates/* templateVariables */.Qp)(ctx.config, host.name, stage, { id: release, commit: ctx.release.commit }),
        ...(0,templates/* targetVariables */.J)(host),
    };
}

;// CONCATENATED MODULE: ./src/targets/ssh/target.ts

























/** How long a host may take to answer SSH again after its VM was rolled back (and booted). */
const VM_BACK_TIMEOUT_MS = 180_000;
/** The SSH command around the tests gets this much on top of their own limit. */
const TESTS_OUTER_GRACE_MS = (TESTS_KILL_AFTER_S + 25) * 1000;
/** How long a rollback waits for this run's abandoned commands on the host to be gone. */
const ORPHAN_WAIT_S = 10;
/**
 * How long, from the first need, a run keeps trying to reach a host again to stop what a lost channel left running
 * there; every later attempt on the same host shares the window, so a host that is gone for good costs it once.
 */
const ORPHAN_RECONNECT_MS = 15_000;
/** A rollback whose session dies is tried again (after killing what it left) this many times in all. */
const ROLLBACK_ATTEMPTS = 3;
/**
 * When a cancel lands while a rollback runs, the rest is handed over to the host and waited for this long at most:
 * the cancellation budget (about 6 s) also has to kill what runs and release the locks.
 */
const CANCELLED_ROLLBACK_WAIT_MS = 3000;
/** Room a write needs beyond its bytes (metadata, a file system's reserve) before "no space" is not the reason. */
const SPACE_SLACK_BYTES = 64 * 1024;
/** Errors that mean a command's channel was lost: the command may still run on the host. */
const LOST = ['unreachable', 'timeout', 'cancelled'];
const lostChannel = (err) => err instanceof errors/* DeployError */.sH && LOST.includes(err.errorClass);
const sha256 = (data) => (0,external_node_crypto_.createHash)('sha256').update(data).digest('hex');
/** The env file's link target as SFTP takes it (a plain path, not a shell word). */
const envLinkTarget = (envFile) => `../../${LAYOUT.shared}/${envFile}`;
/**
 * Makes a symlink over SFTP, which costs the host no process; false when it was not made (the name exists, the
 * server refused, or no answer came in time), and the caller then makes it on the host.
 */
function sftpSymlink(sftp, target, link) {
    return new Promise((resolve) => {
        const done = trackSftpRequest(sftp);
        const timer = setTimeout(() => finish(false), SFTP_REQUEST_TIMEOUT_MS);
        const finish = (ok) => {
            clearTimeout(timer);
            done();
            resolve(ok);
        };
        try {
            sftp.symlink(target, link, (err) => finish(!err));
        }
        catch {
            finish(false); // the session closed meanwhile
        }
    });
}
/** A step failure as a DeployError of `errorClass`, quoting the step's exit code and last output lines. */
/** The report's step for work done with SFTP requests alone: no exit code of its own, nothing printed. */
function sftpDone(name, command, startedAt) {
    const step = { name, command, exitCode: 0, durationMs: Date.now() - startedAt, ok: true };
    return { ok: true, steps: [step] };
}
function stepError(r, host, errorClass = 'command-failed') {
    const f = r.failed;
    const tail = (f?.output ?? '').trim().split('\n').slice(-5).join(' | ');
    return new errors/* DeployError */.sH(errorClass, `step "${f?.name}" failed on ${host} (exit ${f?.exitCode ?? 'none'})${tail ? `: ${tail}` : ''}`, { host });
}
/**
 * An SSH host as a target: releases in `<path>/releases/<id>`, an atomic `current` link, compose or up/down
 * commands, and the lock, release log, audit log and rollback points in `<path>/.homelab-deploy/`. Scripts are
 * built by the pure functions in ./scripts; this class only runs them over the host's connection and reads
 * their results.
 */
class SshTarget {
    ctx;
    config;
    shared;
    kind = 'ssh';
    /**
     * A command of this run lost its channel (no exit status, a timeout, a cancel): it may still run on the host,
     * and nothing may be rolled back or released there before it is gone.
     */
    abandoned = false;
    /** Until when ensureNothingRunning keeps trying to reach the host again (see ORPHAN_RECONNECT_MS). */
    reconnectUntil;
    /**
     * What `current` named when this run released its lock (the release reads it while the lock is still its own),
     * until this run sends the host anything else: what readCurrent would read then, without another command.
     */
    currentAtRelease;
    constructor(ctx, config, shared) {
        this.ctx = ctx;
        this.config = config;
        this.shared = shared;
    }
    get name() {
        return this.config.name;
    }
    conn() {
        return this.shared.pool.get(this.name);
    }
    /** Runs a script on the host, remembering when a command may outlive its channel. */
    async exec(script, opts = {}) {
        this.currentAtRelease = undefined;
        const conn = await this.conn();
        try {
            const res = await conn.exec(script, opts);
            if (res.code === null && !res.signal)
                this.abandoned = true;
            return res;
        }
        catch (err) {
            if (lostChannel(err))
                this.abandoned = true;
            throw err;
        }
    }
    async steps(steps, opts) {
        this.currentAtRelease = undefined;
        const conn = await this.conn();
        try {
            const r = await runSteps(conn, steps, opts);
            if (r.steps.some((s) => s.exitCode === null))
                this.abandoned = true;
            return r;
        }
        catch (err) {
            if (lostChannel(err))
                this.abandoned = true;
            throw err;
        }
    }
    /** The host as a Shell, for snapshot providers and checks that only need to run a command there. */
    get shell() {
        return { exec: (script, opts) => this.exec(script, opts) };
    }
    async preflight(phase) {
        const { ctx, config: host } = this;
        // A lock command of an earlier try that lost its channel could still take the lock behind this one.
        await this.nothingLeft();
        const owner = JSON.stringify(lockOwner(ctx, host.name, phase));
        const r = await this.steps(preflightSteps(ctx, host, owner), { timeoutMs: 60_000, signal: ctx.signal });
        const kv = preflightValues(r.outputs);
        if (!r.ok) {
            const f = r.failed;
            if (f?.name === 'lock') {
                const text = r.outputs.lock ?? '';
                const holder = (0,ssh_owner/* parseOwner */.p)(text.slice(text.indexOf('{')));
                const age = Number(/lock-age=(\d+)/.exec(text)?.[1] ?? NaN);
                const who = holder
                    ? `${holder.actor ?? 'unknown actor'} (run ${holder.runUrl ?? holder.runId ?? holder.token}, commit ${holder.commit.slice(0, 12)}, phase ${holder.phase}) since ${holder.startedAt}`
                    : 'an unknown owner (no readable owner record)';
                const stale = age >= ctx.config.lock.staleAfterMs / 1000;
                const hint = text.includes('a rollback handed over to the host is still running')
                    ? `; a rollback that run handed over to the host is still running there (it releases the lock when it ends)`
                    : stale
                        ? `; its heartbeat is ${age}s old (stale) but lock.takeover_stale is off: release it with \`homelab-deploy lock release\` after checking that run is gone`
                        : Number.isFinite(age)
                            ? `; last heartbeat ${age}s ago`
                            : '';
                throw new errors/* DeployError */.sH('lock-held', `${host.name} is locked by ${who}${hint}`, { host: host.name });
            }
            if (f?.name === 'runtime')
                throw new errors/* DeployError */.sH('precondition', `runtime check "${host.runtimeCheck}" failed on ${host.name} (exit ${f.exitCode}): ${(f.output ?? '').trim().slice(-300)}`, { host: host.name });
            if (f?.name === 'disk' && kv.free !== undefined && f.exitCode === 1)
                throw new errors/* DeployError */.sH('precondition', `only ${(0,duration/* formatBytes */.z3)(Number(kv.free))} free under ${host.path} on ${host.name}, need ${(0,duration/* formatBytes */.z3)(host.minFreeDiskBytes)} (min_free_disk)`, { host: host.name });
            throw stepError(r, host.name, 'precondition');
        }
        const current = kv.current || null;
        const repaired = (r.outputs.sweep ?? '')
            .split('\n')
            .filter((l) => l.startsWith('repaired='))
            .map((l) => l.slice('repaired='.length).trim());
        if (repaired.length)
            ctx.emit({
                type: 'log',
                level: 'warn',
                message: `${host.name}: repaired what an earlier run left: ${repaired.join('; ')}`,
            });
        return {
            current,
            onNew: current === ctx.release.id,
            prepared: kv.complete === 'yes',
            lock: kv.lock === 'ours' ? 'ours' : kv.lock === 'taken-over' ? 'taken-over' : 'acquired',
            steps: r,
            detail: {
                freeBytes: Number(kv.free ?? 0),
                ...(repaired.length ? { repaired: repaired.join('; ') } : {}),
            },
        };
    }
    async heartbeat() {
        const res = await this.exec(heartbeatScript(this.ctx, this.config, new Date().toISOString()), {
            timeoutMs: 15_000,
        });
        return !res.stdout.includes('lost');
    }
    /**
     * Releases the lock once nothing of this run runs on the host any more; false when it was not released (not
     * ours, or the host did not answer). Rejects only when that cannot be made sure (the host cannot be reached to
     * stop a command that lost its channel, or the command outlived its kill): the host then keeps its lock, and its
     * state is unknown.
     */
    async releaseLock(opts = {}) {
        await this.nothingLeft(opts.timeoutMs);
        // A host that cannot be reached now keeps its lock (stale later), and nothing of this run runs there.
        const res = await this.exec(releaseLockScript(this.ctx, this.config), {
            timeoutMs: opts.timeoutMs ?? 30_000,
        }).catch(() => undefined);
        const released = res?.stdout.includes('released') ?? false;
        const current = /^current=(.*)$/m.exec(res?.stdout ?? '');
        if (released && current)
            this.currentAtRelease = current[1].trim() || null;
        return released;
    }
    /**
     * Replaces the host's env file atomically: 0600 temp file in the same folder, fsync, size+sha256 check on the
     * host, keep the old file for rollback, rename over. An interrupted run leaves only a temp file the next run's
     * pre-flight sweeps.
     */
    async writeSecrets(file, content) {
        const { ctx, config: host } = this;
        await this.nothingLeft();
        const conn = await this.conn();
        const sftp = await conn.sftp({ signal: ctx.signal });
        const dir = `${host.path}/${LAYOUT.shared}`;
        const tmp = `${file}.tmp-${ctx.runToken}`;
        const old = (await readFileIfExists(sftp, host.name, `${dir}/${file}`, { signal: ctx.signal }))?.toString('utf8');
        if (old !== undefined && sha256(old) === sha256(content))
            return { state: 'unchanged', changed: [] };
        const data = Buffer.from(content, 'utf8');
        const what = `writing ${LAYOUT.shared}/${file}`;
        const names = {
            dir,
            file,
            tmp,
            saved: `${file}.before-${ctx.release.id}`,
            ...envUndoNames(file, ctx.runToken),
        };
        // Copies made where the file system has no hard links, beside the temp file: a failed write removes them all.
        const leftovers = [tmp, `${names.saved}.tmp`, `${names.undo}.tmp`].map((f) => `${dir}/${f}`);
        let swapped;
        const startedAt = Date.now();
        try {
            await writeFile(sftp, host.name, `${dir}/${tmp}`, data, 0o600, {
                exclusive: true,
                fsync: true,
                verify: true,
                signal: ctx.signal,
            });
            swapped = await swapEnvOverSftp(sftp, host.name, names, { signal: ctx.signal });
        }
        catch (err) {
            throw await this.writeFailure(err, dir, leftovers, data.length, what);
        }
        const changed = (0,env_file/* changedKeys */.F$)(old ? (0,env_file/* parseEnvFile */.FO)(old, host.envDialect) : {}, (0,env_file/* parseEnvFile */.FO)(content, host.envDialect));
        if (swapped) {
            const command = `write, read back and rename ${LAYOUT.shared}/${file} over SFTP`;
            return { state: 'written', changed, steps: sftpDone('env-swap', command, startedAt) };
        }
        // The shell swap decides again from what it finds, so it finishes whatever the SFTP swap got to.
        const step = envSwapStep({ ...names, size: data.length, sha256: sha256(data) });
        const r = await this.steps([step], { timeoutMs: 60_000, signal: ctx.signal });
        if (!r.ok) {
            const why = r.failed?.output?.trim() ?? '';
            const err = new errors/* DeployError */.sH('command-failed', `writing ${file} failed: ${why}`, { host: host.name });
            if (r.failed?.exitCode !== null && /no space/i.test(why))
                throw await this.writeFailure(err, dir, [`${dir}/${tmp}`], data.length, what);
            throw err;
        }
        return { state: 'written', changed, steps: r };
    }
    /**
     * Undoes exactly what this run's secrets phase did to the env file (also a write whose channel was lost half
     * way, and a temp file it left); where it changed nothing, nothing happens.
     */
    async restoreSecrets(opts = {}) {
        const envFile = this.ctx.config.secrets?.file;
        if (!envFile)
            return undefined;
        await this.nothingLeft(opts.timeoutMs);
        return this.steps([
            {
                name: 'restore-env',
                display: `restore ${envFile}`,
                script: undoEnvScript(this.ctx, this.config, envFile),
            },
        ], { timeoutMs: opts.timeoutMs ?? 30_000 });
    }
    async snapshot(previous, opts) {
        const { ctx, config: host } = this;
        await this.nothingLeft();
        let infra;
        let warnings = [];
        if (host.snapshot && opts.infra) {
            const provider = snapshotProvider(ctx, host, host.snapshot, this.shell);
            infra = provider_snapshotName(ctx.release.id, ctx.runToken);
            let made;
            try {
                made = await provider.create(infra);
            }
            catch (err) {
                if (err instanceof SnapshotActionError)
                    await this.auditActions(err.actions).catch(() => undefined);
                throw err;
            }
            ctx.audit('snapshot', host.name, `${provider.describe} snapshot ${infra}`);
            warnings = made.warnings ?? [];
            await this.auditActions([made]);
        }
        const point = previous === undefined
            ? undefined
            : {
                release: ctx.release.id,
                previous,
                infraSnapshot: infra,
                recordedAt: new Date().toISOString(),
                runId: ctx.run.id,
                token: ctx.runToken,
            };
        const display = `record ${LAYOUT.rollbackPoint(ctx.release.id)}`;
        const startedAt = Date.now();
        let text;
        try {
            const sftp = await (await this.conn()).sftp({ signal: ctx.signal });
            const opts = { signal: ctx.signal };
            text = point
                ? await recordPointOverSftp(sftp, ctx, host, point, opts)
                : await readPointOverSftp(sftp, ctx, host, opts);
        }
        catch (err) {
            // SFTP says only "Failure" for a full disk: the free space on the host says whether that was it.
            const file = `${host.path}/${LAYOUT.rollbackPoint(ctx.release.id)}`;
            throw await this.writeFailure(err, `${host.path}/${LAYOUT.meta}`, [`${file}.tmp`], 4096, `recording ${LAYOUT.rollbackPoint(ctx.release.id)}`, host.path);
        }
        let steps;
        if (text !== undefined)
            steps = sftpDone('rollback-point', display, startedAt);
        else {
            const r = await this.steps([{ name: 'rollback-point', display, script: rollbackPointScript(ctx, host, point) }], { timeoutMs: 30_000, signal: ctx.signal });
            if (!r.ok)
                throw stepError(r, host.name);
            text = (r.outputs['rollback-point'] ?? '').trim().split('\n').pop();
            steps = r;
        }
        const recorded = JSON.parse(text || '{}');
        return {
            point: recorded.previous !== undefined ? recorded : undefined,
            steps,
            warnings,
        };
    }
    async readRollbackPoint() {
        const sftp = await (await this.conn()).sftp({ signal: this.ctx.signal });
        const text = await readPointOverSftp(sftp, this.ctx, this.config, { signal: this.ctx.signal });
        try {
            const point = JSON.parse(text);
            return point.release === undefined ? undefined : point;
        }
        catch {
            return undefined;
        }
    }
    /**
     * Puts the release on the host and makes it current: upload (unless already complete there; the marker goes
     * last, so a release directory without it is never activated), then place, switch and up in one round trip.
     */
    async deploy(opts) {
        const { ctx, config: host } = this;
        // A retry never starts while the previous attempt's command (a lost session's `up`) still runs.
        await this.nothingLeft();
        const conn = await this.conn();
        let made = {};
        if (!opts.prepared) {
            const base = `${host.path}/${incomingDir(ctx)}`;
            const marker = {
                id: ctx.release.id,
                commit: ctx.release.commit,
                ref: ctx.release.ref,
                uploadedAt: new Date().toISOString(),
                runId: ctx.run.id,
            };
            try {
                await uploadTree(conn, base, ctx.files, { signal: ctx.signal });
                const sftp = await conn.sftp({ signal: ctx.signal });
                const envFile = ctx.config.secrets?.file;
                // The env file's link and the next `current` go with the upload, beside the marker; where one cannot be
                // made (the release has a file of that name, a dead run left the name), the deploy steps make it on the host.
                const [envLinked, currentLinked] = await Promise.all([
                    envFile ? sftpSymlink(sftp, envLinkTarget(envFile), `${base}/${envFile}`) : Promise.resolve(false),
                    sftpSymlink(sftp, `${LAYOUT.releases}/${ctx.release.id}`, `${host.path}/${incomingCurrent(ctx)}`),
                    writeFile(sftp, host.name, `${base}/${LAYOUT.releaseMarker}`, Buffer.from(JSON.stringify(marker) + '\n'), 0o644, { signal: ctx.signal }),
                ]);
                made = { envLinked, currentLinked };
            }
            catch (err) {
                // A failed upload goes (it would only take the space a retry needs); a lost one is reused by the retry.
                const size = ctx.files.reduce((n, f) => n + f.data.length, 0);
                throw await this.writeFailure(err, base, [base], size, `release ${ctx.release.id}`, host.path);
            }
        }
        const r = await this.steps(deploySteps(ctx, host, opts.stage, opts.previous, made), {
            timeoutMs: host.deploy.timeoutMs + 60_000,
            signal: ctx.signal,
        });
        return {
            ok: r.ok,
            steps: r.steps,
            failed: r.failed,
            switched: r.steps.some((s) => s.name === 'switch' && s.ok),
            version: r.steps.some((s) => s.name === 'switch' && s.ok) ? ctx.release.id : undefined,
        };
    }
    healthSubject(stage, version) {
        const { ctx, config: host } = this;
        const release = version ?? ctx.release.id;
        const env = (0,commands/* releaseEnv */.Db)(host, ctx.config.project, { id: release, commit: ctx.release.commit }, stage);
        return {
            name: host.name,
            release,
            vars: sshTemplateVars(ctx, host, stage, release),
            env,
            exec: (command, o) => this.exec(command, o),
            compose: host.deploy.strategy === 'compose'
                ? (check, o) => probeCompose(this.shell, host, ctx.config.project, env, check, {
                    ...o,
                    redact: (t) => ctx.redactor.redact(t),
                })
                : undefined,
        };
    }
    /**
     * Returns the host to `opts.to`: first makes sure nothing of this run still runs there (a command whose channel
     * was lost goes on running on the host, and would finish after the rollback), then the infrastructure snapshot
     * where one was taken (it resets the disk, so it comes before anything written), then the release: env file,
     * `current`, the stack. Under cancellation the release part is handed over to the host.
     */
    async rollback(opts) {
        const { ctx, config: host } = this;
        const handOver = opts.handOverWaitMs !== undefined;
        // The wait is a budget for the whole rollback: what making sure of the host costs comes out of it.
        const handOverBy = Date.now() + (opts.handOverWaitMs ?? 0);
        const gone = await this.ensureNothingRunning(handOver ? Math.min(opts.handOverWaitMs ?? 0, 3000) : undefined);
        if (!gone.ok)
            throw new errors/* DeployError */.sH(gone.error?.errorClass ?? 'command-failed', `not rolled back: ${gone.error?.message ?? `${host.name}: its state is unknown`}`, { host: host.name });
        const out = { ok: false, steps: [], actions: [] };
        const snap = host.snapshot;
        if (snap?.rollbackOnFailure && opts.infraSnapshot && !handOver) {
            let back;
            try {
                back = await snapshotProvider(ctx, host, snap, this.shell).rollback(opts.infraSnapshot);
            }
            catch (err) {
                if (err instanceof SnapshotActionError) {
                    for (const a of err.actions)
                        ctx.audit('rollback', host.name, a.detail);
                    await this.auditActions(err.actions).catch(() => undefined);
                }
                throw err;
            }
            out.infraSnapshot = opts.infraSnapshot;
            if (snap.provider === 'proxmox')
                await this.waitForHost(VM_BACK_TIMEOUT_MS);
            // Written once the guest is back: the VM rollback rewound its disk, audit log included.
            ctx.audit('rollback', host.name, back.detail);
            await this.auditActions([back]).catch(() => undefined);
        }
        // A manual rollback returns from whatever runs now: its saved env file and log lines name that release.
        const from = opts.from ? { ...ctx, release: { ...ctx.release, id: opts.from } } : ctx;
        if (handOver)
            return { ...out, ...(await this.handOver(opts.stage, opts.to, handOverBy - Date.now(), from)) };
        for (let attempt = 1;; attempt++) {
            let r;
            let err;
            try {
                r = await this.steps(rollbackSteps(from, host, opts.stage, opts.to), {
                    timeoutMs: host.deploy.timeoutMs + 60_000,
                    signal: ctx.signal,
                });
            }
            catch (e) {
                err = e;
            }
            if (r?.ok)
                return { ...out, ok: true, steps: r.steps, failed: undefined };
            if (ctx.signal.aborted) {
                // Cancelled while rolling back: the runner kills us in seconds, and a stack's `up` cut half way would leave
                // the host worse off than either release. What this attempt left is killed and the rollback, which is
                // safe to run again, goes on detached on the host.
                const t0 = Date.now();
                await this.nothingLeft(1500);
                const waitMs = Math.max(1000, CANCELLED_ROLLBACK_WAIT_MS - (Date.now() - t0));
                return { ...out, ...(await this.handOver(opts.stage, opts.to, waitMs, from)) };
            }
            const lost = err !== undefined ? lostChannel(err) : r?.failed?.exitCode === null;
            if (!lost || attempt >= ROLLBACK_ATTEMPTS) {
                if (err !== undefined)
                    throw err;
                return { ...out, ok: false, steps: r?.steps ?? [], failed: r?.failed };
            }
            // The session died under the rollback: make sure nothing of it still runs, then run it again on a fresh one.
            ctx.emit({
                type: 'log',
                level: 'warn',
                message: `${host.name}: the rollback lost its SSH session (${err !== undefined ? (0,errors/* toDeployError */.pH)(err).message : `step ${r?.failed?.name} got no exit status`}); trying again`,
            });
            await this.nothingLeft();
        }
    }
    async handOver(stage, to, waitMs, run = this.ctx) {
        const waitS = Math.max(0, Math.floor(waitMs / 1000));
        const { script, logPath } = handOverScript(run, this.config, stage, to, waitS);
        const res = await this.exec(script, { timeoutMs: waitMs + 5000 });
        const rc = /^rc=(\S+)/.exec(res.stdout)?.[1];
        const finished = rc !== undefined && rc !== 'running';
        const output = res.stdout.replace(/^rc=\S+\n?/, '');
        return {
            ok: finished && rc === '0',
            steps: [],
            handedOver: true,
            pending: !finished || undefined,
            logFile: `${this.config.path}/${logPath}`,
            failed: finished && rc !== '0'
                ? { name: 'rollback', ok: false, durationMs: 0, output, exitCode: Number(rc) }
                : undefined,
        };
    }
    /** After a VM rollback the host reboots: wait until SSH answers again, on a fresh connection. */
    async waitForHost(timeoutMs) {
        const deadline = Date.now() + timeoutMs;
        let last;
        while (Date.now() < deadline) {
            try {
                const res = await this.exec('true', { timeoutMs: 10_000 });
                if (res.code === 0)
                    return;
            }
            catch (err) {
                last = err;
            }
            await (0,duration/* sleep */.yy)(2000);
        }
        throw new errors/* DeployError */.sH('unreachable', `${this.name} did not answer SSH within ${Math.round(timeoutMs / 1000)}s of its snapshot rollback: ${last?.message ?? ''}`, { host: this.name });
    }
    /**
     * When a command of this run lost its channel, it may still run on the host: kill every process of this run
     * there (over a fresh connection if the old one died, trying to reach the host again for a while) and wait until
     * none is left. `ok: false` when that could not be made sure: the host could not be reached, or pids outlived the
     * kill (the host is then marked for a human too). Either way the host's state is unknown.
     */
    async ensureNothingRunning(waitMs) {
        if (!this.abandoned)
            return { ok: true };
        const name = this.name;
        this.reconnectUntil ??= Date.now() + ORPHAN_RECONNECT_MS;
        const deadline = Math.min(Date.now() + (waitMs ?? ORPHAN_RECONNECT_MS), this.reconnectUntil);
        let conn;
        let last;
        for (;;) {
            try {
                conn = await this.conn();
                break;
            }
            catch (err) {
                last = (0,errors/* toDeployError */.pH)(err, 'unreachable');
                if (!['unreachable', 'timeout'].includes(last.errorClass) || Date.now() + 1000 >= deadline)
                    break;
                await (0,duration/* sleep */.yy)(1000);
            }
        }
        const unsure = (why, errorClass = 'unreachable') => new errors/* DeployError */.sH(errorClass, `commands of this run may still run on ${name}: ${why}`, { host: name });
        // The class stays what refused the connection: a changed host key is never retried, a dropped link may be.
        if (!conn)
            return {
                ok: false,
                error: unsure(`it cannot be reached to stop them (${last?.message ?? ''})`, last?.errorClass),
            };
        const waitS = Math.max(1, Math.round(Math.min(waitMs ?? Infinity, ORPHAN_WAIT_S * 1000) / 1000));
        let res;
        try {
            await conn.killAndWait();
            res = await conn.exec(waitGoneScript(this.ctx, this.config, waitS), {
                timeoutMs: waitS * 1000 + 10_000,
            });
        }
        catch (err) {
            return { ok: false, error: unsure(`stopping them failed (${(0,errors/* toDeployError */.pH)(err).message})`) };
        }
        if (res.stdout.includes('gone')) {
            this.abandoned = false;
            this.reconnectUntil = undefined;
            return { ok: true };
        }
        const left = /left=(.*)/.exec(res.stdout)?.[1]?.trim() ?? '?';
        const error = new errors/* DeployError */.sH('command-failed', `commands of this run still run on ${name} after being killed (pids ${left}); its state is unknown`, { host: name });
        await this.markNeedsAttention({ time: new Date().toISOString(), reason: 'commands-survived-kill', pids: left, error: error.message }, { timeoutMs: 10_000 }).catch(() => undefined);
        return { ok: false, left, error };
    }
    /** Throws ensureNothingRunning's error when it could not make sure that nothing of this run runs on the host. */
    async nothingLeft(waitMs) {
        const r = await this.ensureNothingRunning(waitMs);
        if (!r.ok)
            throw r.error ?? new errors/* DeployError */.sH('unreachable', `${this.name}: state unknown`, { host: this.name });
    }
    /**
     * A write that failed (SFTP or the swap): removes what it left in `remove` and, where the host answers, says
     * whether the disk is full, with the free space read from the host and what the write needed. A lost channel
     * is passed on as it is (nothing can be read, and a retry reuses what was written).
     */
    async writeFailure(err, dir, remove, need, what, dfDir) {
        const e = (0,errors/* toDeployError */.pH)(err, 'command-failed');
        if (e.errorClass !== 'command-failed')
            return e;
        const where = dfDir ?? dir;
        let free;
        try {
            const res = await this.exec(freeSpaceScript(where, remove), { timeoutMs: 15_000 });
            free = Number(/free=(\d+)/.exec(res.stdout)?.[1] ?? NaN);
        }
        catch {
            return e;
        }
        if (!Number.isFinite(free))
            return e;
        if (free < need + SPACE_SLACK_BYTES || /no space|ENOSPC/i.test(e.message))
            return new errors/* DeployError */.sH('precondition', `no space left on ${this.name}: ${(0,duration/* formatBytes */.z3)(free)} free under ${where}, ${what} needs ${(0,duration/* formatBytes */.z3)(need)} (${e.message})`, { host: this.name });
        return new errors/* DeployError */.sH('command-failed', `${e.message} (${(0,duration/* formatBytes */.z3)(free)} free under ${where})`, {
            host: this.name,
        });
    }
    async settle(opts) {
        const { ctx, config: host } = this;
        const line = logLine(ctx, host, {
            event: 'deploy',
            stage: opts.stage,
            previous: opts.previous,
            result: opts.unchanged ? 'unchanged' : 'deployed',
            durationMs: opts.durationMs,
        });
        const protect = [ctx.release.id, opts.previous ?? ''];
        // The release log line and the pruning share one round trip.
        await this.exec(`cd ${(0,quote/* shQuote */.U)(host.path)} && ${line}\n${pruneScript(ctx, host, protect)}`, {
            timeoutMs: 120_000,
        }).catch(() => undefined);
        if (opts.infraSnapshot)
            await this.pruneSnapshots(opts.infraSnapshot);
    }
    /** Old infrastructure snapshots beyond `keep`, never the one this release's rollback needs. */
    async pruneSnapshots(protect) {
        const { ctx, config: host } = this;
        if (!host.snapshot)
            return;
        let pruned = [];
        try {
            pruned = await snapshotProvider(ctx, host, host.snapshot, this.shell).prune([protect]);
        }
        catch (err) {
            if (err instanceof SnapshotActionError)
                pruned = err.actions;
            ctx.emit({
                type: 'log',
                level: 'warn',
                message: `${host.name}: pruning old snapshots failed: ${ctx.errorInfo(err).message}`,
            });
        }
        for (const a of pruned)
            ctx.audit('snapshot', host.name, a.detail);
        await this.auditActions(pruned).catch(() => undefined);
    }
    /** A release-log line; a cancellation is an action on the host as well, so it goes into the audit log too. */
    async appendLog(entry, opts = {}) {
        const cancelled = entry.event === 'cancelled' || entry.result === 'cancelled';
        const { stage, previous } = entry;
        await this.exec([
            `cd ${(0,quote/* shQuote */.U)(this.config.path)} || exit 1`,
            logLine(this.ctx, this.config, entry),
            cancelled ? auditLine(this.ctx, this.config, 'cancelled', undefined, { stage, previous }) : '',
        ].join('\n'), { timeoutMs: opts.timeoutMs ?? 30_000 });
    }
    /** Writes the record; a host that dropped is tried again until `timeoutMs` (it may be back in seconds). */
    async markNeedsAttention(record, opts = {}) {
        // A host already found gone for the whole reconnect window gets one more try, not another wait.
        const deadline = Math.min(Date.now() + (opts.timeoutMs ?? 15_000), this.reconnectUntil ?? Infinity);
        for (;;) {
            try {
                await this.exec(needsAttentionScript(this.ctx, this.config, record), {
                    timeoutMs: Math.max(1000, deadline - Date.now()),
                });
                return;
            }
            catch (err) {
                const retry = ['unreachable', 'timeout'].includes((0,errors/* toDeployError */.pH)(err).errorClass);
                if (!retry || Date.now() + 1000 >= deadline)
                    throw err;
                await (0,duration/* sleep */.yy)(1000);
            }
        }
    }
    /** What `current` names, read only once nothing of this run runs there any more (else it rejects). */
    async readCurrent(opts = {}) {
        await this.nothingLeft(opts.timeoutMs);
        const known = this.currentAtRelease;
        if (known !== undefined)
            return { version: known, onNew: known === this.ctx.release.id };
        const res = await this.exec(readCurrentScript(this.config), { timeoutMs: opts.timeoutMs ?? 30_000 });
        const version = res.stdout.trim() || null;
        return { version, onNew: version === this.ctx.release.id };
    }
    async runTests(command, opts) {
        const { ctx, config: host } = this;
        const mark = `__hd_tests_${(0,external_node_crypto_.randomBytes)(6).toString('hex')}__`;
        const script = testsScript({
            host,
            env: (0,commands/* releaseEnv */.Db)(host, ctx.config.project, ctx.release, opts.stage),
            command,
            timeoutMs: opts.timeoutMs,
            junit: opts.junit,
            mark,
        });
        let res;
        try {
            await this.nothingLeft();
            res = await this.exec(script, { timeoutMs: opts.timeoutMs + TESTS_OUTER_GRACE_MS, signal: ctx.signal });
        }
        catch (err) {
            return { exitCode: null, output: (0,errors/* toDeployError */.pH)(err).message };
        }
        const parsed = parseTestsOutput(res.stdout, res.stderr, res.code, mark);
        return {
            ...parsed,
            junitMissing: opts.junit && parsed.junitXml === undefined ? `${host.name}:${opts.junit}` : undefined,
        };
    }
    /** Kills this run's commands on the host; what holds the host next (a rollback, a lock release) checks they went. */
    async kill() {
        this.abandoned = true;
        await (await this.conn()).kill();
    }
    /** Gives the connection back (once work in flight on it ended); the next call opens a fresh one. */
    async close() {
        await this.shared.pool.release(this.name);
    }
    status() {
        return readStatus(this.ctx, this.config, this.shell);
    }
    rollbackFacts() {
        return readRollbackFacts(this.config, this.shell);
    }
    releaseLockAsOperator(opts) {
        return operatorReleaseLock(this.ctx, this.config, this.shell, opts);
    }
    async readReleaseLog() {
        const r = await this.exec(`cat ${(0,quote/* shQuote */.U)(`${this.config.path}/${LAYOUT.releaseLog}`)} 2>/dev/null; true`, {
            timeoutMs: 60_000,
        });
        return r.stdout;
    }
    auditActions(actions) {
        return auditSnapshotActions(this.ctx, this.config, this.shell, actions);
    }
}

// EXTERNAL MODULE: external "node:path"
var external_node_path_ = __webpack_require__(6760);
// EXTERNAL MODULE: ./src/targets/state/atomic-file.ts
var atomic_file = __webpack_require__(830);
;// CONCATENATED MODULE: ./src/targets/state/dir-store.ts






/** File names inside `<root>/<target>/`; the same names an SSH host keeps under `.homelab-deploy/`. */
const DIR_LAYOUT = {
    lock: 'lock',
    lockOwner: 'owner.json',
    takeover: 'takeover',
    releaseLog: 'releases.log',
    auditLog: 'audit.log',
    needsAttention: 'needs-attention.json',
    rollbackPoint: (release) => `rollback-point-${release}.json`,
};
const POINT_RE = /^rollback-point-(.+)\.json$/;
/** Target names and release ids become file names: no separators, no dot-only names, no hidden files. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** A takeover mutex or a half-made lock older than this belongs to a process that was killed holding it. */
const ABANDONED_MS = 60_000;
const isCode = (err, ...codes) => codes.includes(err?.code ?? '');
function parseOwner(text) {
    try {
        const o = JSON.parse(text);
        return o && typeof o === 'object' && typeof o.token === 'string' ? o : null;
    }
    catch {
        return null;
    }
}
const rand = () => (0,external_node_crypto_.randomBytes)(6).toString('hex');
/**
 * A StateStore on a local directory: the runner's disk, for targets that have no host of their own.
 *
 * `<root>/<target>/lock/owner.json` is the deploy lock. It is made whole in a fresh temp directory (owner record
 * written and synced) and then renamed onto `lock`; rename(2) of a directory fails when a non-empty `lock`
 * exists, so exactly one of any number of processes gets it, and nobody can ever see a lock without its owner.
 * The heartbeat replaces owner.json atomically (its mtime is the age other runs judge). Everything that removes a
 * lock (its owner's release, an operator) first renames it aside and then checks that what it moved is the lock it
 * judged, so a lock taken a moment later by someone else is never deleted. A takeover replaces the owner record
 * inside the lock directory instead, so the lock never disappears in between.
 *
 * What it does NOT guarantee:
 * - It is one machine's directory. Two runners do not share it, so it excludes two deploys of a target only among
 *   the jobs that run on this runner; across machines the workflow's `concurrency` group is what serialises
 *   deploys. A directory on a GitHub-hosted runner is gone when the job ends, and with it the release log and the
 *   rollback points: later jobs then find no rollback point (use a self-hosted runner, or a state path that
 *   outlives the job).
 * - Local file systems only: on NFS and similar, rename and O_APPEND are not atomic between clients.
 * - A heartbeat is check-then-replace: an operator's forced release that lands between the two can be undone by
 *   the old owner's record coming back; the next heartbeat of the new owner then reports its lock as lost, so two
 *   runs still never both believe they hold it for longer than one heartbeat interval.
 * - An empty `lock` directory (made by hand) does not block rename(2) and is replaced by the next locker.
 */
class DirStateStore {
    root;
    describe;
    hostname = external_node_os_.hostname();
    constructor(root) {
        this.root = root;
        if (!external_node_path_.isAbsolute(root))
            throw new errors/* DeployError */.sH('config', `state directory must be an absolute path, got ${JSON.stringify(root)}`);
        this.describe = `${this.hostname}:${root}`;
    }
    targetDir(target) {
        if (!NAME_RE.test(target) || target.includes('..'))
            throw new errors/* DeployError */.sH('config', `state store: ${JSON.stringify(target)} cannot be a target name here`);
        return external_node_path_.join(this.root, target);
    }
    async ensureDir(target) {
        const dir = this.targetDir(target);
        await external_node_fs_.promises.mkdir(dir, { recursive: true });
        return dir;
    }
    pointFile(target, release) {
        if (!NAME_RE.test(release) || release.includes('..'))
            throw new errors/* DeployError */.sH('config', `state store: ${JSON.stringify(release)} cannot be a release id here`);
        return external_node_path_.join(this.targetDir(target), DIR_LAYOUT.rollbackPoint(release));
    }
    // ---- lock ------------------------------------------------------------------------------------------------
    /** Builds a complete lock directory aside and renames it onto `lock`; false when a lock already exists. */
    async take(dir, owner) {
        const tmp = await external_node_fs_.promises.mkdtemp(external_node_path_.join(dir, '.lock-new-'));
        try {
            const h = await external_node_fs_.promises.open(external_node_path_.join(tmp, DIR_LAYOUT.lockOwner), 'wx', 0o644);
            try {
                await h.writeFile(JSON.stringify(owner) + '\n');
                await h.sync();
            }
            finally {
                await h.close();
            }
            await (0,atomic_file/* fsyncDir */.t_)(tmp);
            await external_node_fs_.promises.rename(tmp, external_node_path_.join(dir, DIR_LAYOUT.lock));
        }
        catch (err) {
            await external_node_fs_.promises.rm(tmp, { recursive: true, force: true });
            if (isCode(err, 'ENOTEMPTY', 'EEXIST'))
                return false;
            throw err;
        }
        await (0,atomic_file/* fsyncDir */.t_)(dir);
        return true;
    }
    /** The lock as it is now, or undefined when there is none. */
    async seeLock(lockDir) {
        let dirStat;
        try {
            dirStat = await external_node_fs_.promises.stat(lockDir);
        }
        catch (err) {
            if (isCode(err, 'ENOENT'))
                return undefined;
            throw err;
        }
        const file = external_node_path_.join(lockDir, DIR_LAYOUT.lockOwner);
        const [text, st] = await Promise.all([
            external_node_fs_.promises.readFile(file, 'utf8').catch(() => ''),
            external_node_fs_.promises.stat(file).catch(() => dirStat),
        ]);
        return { text, owner: parseOwner(text), ageMs: Math.max(0, Date.now() - st.mtimeMs) };
    }
    /** Moves the lock aside and checks it is the one judged (`expect`); puts back anything else untouched. */
    async moveAside(dir, why, expect) {
        const lockDir = external_node_path_.join(dir, DIR_LAYOUT.lock);
        const aside = external_node_path_.join(dir, `.lock-${why}-${rand()}`);
        try {
            await external_node_fs_.promises.rename(lockDir, aside);
        }
        catch (err) {
            if (isCode(err, 'ENOENT'))
                return { ok: false };
            throw err;
        }
        const moved = await this.seeLock(aside);
        if (moved && expect(moved))
            return { ok: true, aside, moved };
        // Released and taken again between our look and the rename: that lock is someone else's; put it back.
        try {
            await external_node_fs_.promises.rename(aside, lockDir);
            return { ok: false };
        }
        catch {
            return { ok: false, error: `a lock moved aside to ${aside} could not be put back: a new lock exists` };
        }
    }
    audit(dir, record) {
        return (0,atomic_file/* appendLine */.Xq)(external_node_path_.join(dir, DIR_LAYOUT.auditLog), JSON.stringify(record));
    }
    lockRecord(action, target, owner, extra = {}) {
        return {
            time: new Date().toISOString(),
            action,
            host: target,
            target,
            release: owner.release,
            commit: owner.commit,
            actor: owner.actor,
            runId: owner.runId,
            runUrl: owner.runUrl,
            token: owner.token,
            phase: owner.phase,
            from: this.hostname,
            ...extra,
        };
    }
    /** A lock whose taking cannot be audited is not kept: an unaudited lock action would be lost. */
    async auditOrGiveBack(target, dir, owner, record) {
        try {
            await this.audit(dir, record);
        }
        catch (err) {
            const moved = await this.moveAside(dir, 'unaudited', (m) => m.owner?.token === owner.token).catch(() => undefined);
            if (moved?.ok)
                await external_node_fs_.promises.rm(moved.aside, { recursive: true, force: true });
            throw new errors/* DeployError */.sH('precondition', `${this.describe}: the lock on ${target} was taken but its audit record could not be written (${err.message}); the lock was given back`);
        }
    }
    async lock(target, owner, opts) {
        const dir = await this.ensureDir(target);
        await this.sweepAbandoned(dir);
        const lockDir = external_node_path_.join(dir, DIR_LAYOUT.lock);
        // A lock released between our failed take and our look is free again: try once more, then report it held.
        for (let round = 0; round < 3; round++) {
            if (await this.take(dir, owner)) {
                await this.auditOrGiveBack(target, dir, owner, this.lockRecord('lock-acquired', target, owner));
                return { ok: true };
            }
            const seen = await this.seeLock(lockDir);
            if (!seen)
                continue;
            if (seen.owner?.token === owner.token)
                return { ok: true, ours: true };
            const held = { ok: false, holder: seen.owner, ageSeconds: Math.floor(seen.ageMs / 1000) };
            if (seen.ageMs < opts.staleAfterMs || !opts.takeoverStale)
                return held;
            const took = await this.takeOver(target, dir, owner, seen, opts.staleAfterMs);
            if (took)
                return took;
            // Someone else took it over or re-took it first: look again, and report whoever holds it now.
        }
        const seen = await this.seeLock(lockDir);
        return { ok: false, holder: seen?.owner ?? null, ageSeconds: Math.floor((seen?.ageMs ?? 0) / 1000) };
    }
    /**
     * Takes over a stale lock under a second mutex (an atomic mkdir), so two runs that both judged it stale cannot
     * both take it; staleness is judged again under the mutex. The owner record is replaced inside the existing lock
     * directory (atomic rename of a file), so the lock never disappears in between and no third run can slip in
     * with a plain take. Undefined: not taken (someone else was quicker, or the lock changed).
     */
    async takeOver(target, dir, owner, judged, staleAfterMs) {
        const mutex = external_node_path_.join(dir, DIR_LAYOUT.takeover);
        try {
            await external_node_fs_.promises.mkdir(mutex);
        }
        catch (err) {
            if (isCode(err, 'EEXIST'))
                return undefined;
            throw err;
        }
        const lockDir = external_node_path_.join(dir, DIR_LAYOUT.lock);
        const file = external_node_path_.join(lockDir, DIR_LAYOUT.lockOwner);
        const tmp = external_node_path_.join(lockDir, `.owner.json.takeover-${rand()}`);
        try {
            // Judged again under the mutex: another run may have taken it over between our look and our mutex.
            const now = await this.seeLock(lockDir);
            if (!now || now.text !== judged.text || now.ageMs < staleAfterMs)
                return undefined;
            try {
                const h = await external_node_fs_.promises.open(tmp, 'wx', 0o644);
                try {
                    await h.writeFile(JSON.stringify(owner) + '\n');
                    await h.sync();
                }
                finally {
                    await h.close();
                }
            }
            catch (err) {
                if (isCode(err, 'ENOENT'))
                    return undefined; // released meanwhile
                throw err;
            }
            // The last look right before the swap: only the stale owner itself or an operator can change it now.
            const last = await external_node_fs_.promises.readFile(file, 'utf8').catch(() => '');
            if (last !== now.text)
                return undefined;
            try {
                await external_node_fs_.promises.rename(tmp, file);
            }
            catch (err) {
                if (isCode(err, 'ENOENT'))
                    return undefined;
                throw err;
            }
            await (0,atomic_file/* fsyncDir */.t_)(lockDir);
            await this.auditOrGiveBack(target, dir, owner, this.lockRecord('lock-taken-over', target, owner, {
                previous_owner: now.owner ?? (now.text.trim() || null),
                previousHeartbeatAgeSeconds: Math.floor(now.ageMs / 1000),
            }));
            return { ok: true, tookOverFrom: now.owner };
        }
        finally {
            await external_node_fs_.promises.rm(tmp, { force: true }).catch(() => undefined);
            await external_node_fs_.promises.rmdir(mutex).catch(() => undefined);
        }
    }
    /** Leftovers of processes killed mid-acquire or mid-takeover; they would otherwise block takeovers for ever. */
    async sweepAbandoned(dir) {
        const names = await external_node_fs_.promises.readdir(dir).catch(() => []);
        const now = Date.now();
        await Promise.all(names
            .filter((n) => n === DIR_LAYOUT.takeover || n.startsWith('.lock-new-'))
            .map(async (n) => {
            const p = external_node_path_.join(dir, n);
            const st = await external_node_fs_.promises.stat(p).catch(() => undefined);
            if (!st || now - st.mtimeMs < ABANDONED_MS)
                return;
            if (n === DIR_LAYOUT.takeover)
                await external_node_fs_.promises.rmdir(p).catch(() => undefined);
            else
                await external_node_fs_.promises.rm(p, { recursive: true, force: true });
        }));
        await (0,atomic_file/* sweepTempFiles */.g$)(dir, 10 * ABANDONED_MS);
    }
    async heartbeat(target, token) {
        const lockDir = external_node_path_.join(this.targetDir(target), DIR_LAYOUT.lock);
        const file = external_node_path_.join(lockDir, DIR_LAYOUT.lockOwner);
        const read = async () => parseOwner(await external_node_fs_.promises.readFile(file, 'utf8').catch(() => ''));
        const owner = await read();
        if (owner?.token !== token)
            return false;
        const next = JSON.stringify({ ...owner, heartbeatAt: new Date().toISOString() }) + '\n';
        const tmp = external_node_path_.join(lockDir, `.owner.json.hb-${rand()}`);
        try {
            await external_node_fs_.promises.writeFile(tmp, next, { flag: 'wx', mode: 0o644 });
        }
        catch (err) {
            if (isCode(err, 'ENOENT'))
                return false; // the lock directory is gone
            throw err;
        }
        // Narrows the window in which a lock taken from us in the meantime would get our record back.
        if ((await read())?.token !== token) {
            await external_node_fs_.promises.rm(tmp, { force: true });
            return false;
        }
        try {
            await external_node_fs_.promises.rename(tmp, file);
        }
        catch (err) {
            await external_node_fs_.promises.rm(tmp, { force: true });
            if (isCode(err, 'ENOENT'))
                return false;
            throw err;
        }
        return true;
    }
    async unlock(target, token) {
        const dir = this.targetDir(target);
        const seen = await this.seeLock(external_node_path_.join(dir, DIR_LAYOUT.lock));
        if (!seen || seen.owner?.token !== token)
            return false;
        const moved = await this.moveAside(dir, 'released', (m) => m.owner?.token === token);
        if (!moved.ok)
            return false;
        await external_node_fs_.promises.rm(moved.aside, { recursive: true, force: true });
        await this.audit(dir, this.lockRecord('lock-released', target, moved.moved.owner));
        return true;
    }
    async lockState(target, staleAfterMs) {
        return stateOf(await this.seeLock(external_node_path_.join(this.targetDir(target), DIR_LAYOUT.lock)), staleAfterMs);
    }
    /**
     * Operator override (`lock release`): a live lock (fresh heartbeat) is refused unless `force`. The lock is
     * renamed aside and checked to be the one judged (same owner record and, without force, still stale) before it
     * is removed; anything else is put back untouched. Audited with the previous owner's record.
     */
    async releaseAsOperator(target, opts) {
        let lock;
        try {
            const dir = this.targetDir(target);
            const seen = await this.seeLock(external_node_path_.join(dir, DIR_LAYOUT.lock));
            lock = stateOf(seen, opts.staleAfterMs);
            if (!seen || !lock.held)
                return { host: target, outcome: 'free', lock };
            if (!lock.stale && !opts.force)
                return { host: target, outcome: 'refused-live', lock };
            const moved = await this.moveAside(dir, 'operator', (m) => m.text === seen.text && (opts.force || m.ageMs >= opts.staleAfterMs));
            if (!moved.ok)
                return { host: target, outcome: moved.error ? 'error' : 'changed', lock, error: moved.error };
            await external_node_fs_.promises.rm(moved.aside, { recursive: true, force: true });
            await this.audit(dir, {
                time: new Date().toISOString(),
                action: 'lock-released',
                host: target,
                target,
                operator: opts.operator,
                forced: opts.force,
                stale: lock.stale,
                heartbeatAgeSeconds: lock.heartbeatAgeSeconds,
                from: this.hostname,
                via: 'homelab-deploy lock release',
                previous_owner: moved.moved.owner ?? (moved.moved.text.trim() || null),
            });
            return { host: target, outcome: 'released', lock };
        }
        catch (err) {
            return { host: target, outcome: 'error', lock, error: `${this.describe}: ${err.message}` };
        }
    }
    // ---- logs --------------------------------------------------------------------------------------------------
    async appendReleaseLog(target, entry) {
        const dir = await this.ensureDir(target);
        await (0,atomic_file/* appendLine */.Xq)(external_node_path_.join(dir, DIR_LAYOUT.releaseLog), JSON.stringify(entry));
    }
    async appendAudit(target, entry) {
        const dir = await this.ensureDir(target);
        await this.audit(dir, entry);
    }
    async readReleaseLog(target) {
        return readOrEmpty(external_node_path_.join(this.targetDir(target), DIR_LAYOUT.releaseLog));
    }
    async readAudit(target, n) {
        const text = await readOrEmpty(external_node_path_.join(this.targetDir(target), DIR_LAYOUT.auditLog));
        const lines = text.split('\n').filter(Boolean);
        return lines.slice(-n).join('\n') + (lines.length && n > 0 ? '\n' : '');
    }
    // ---- rollback points and records ---------------------------------------------------------------------------
    async writeRollbackPoint(target, point) {
        await this.ensureDir(target);
        await (0,atomic_file/* writeFileAtomic */.Zf)(this.pointFile(target, point.release), JSON.stringify(point) + '\n');
    }
    async readRollbackPoint(target, release) {
        return readJson(this.pointFile(target, release));
    }
    async listRollbackPoints(target, limit) {
        const dir = this.targetDir(target);
        const names = (await external_node_fs_.promises.readdir(dir).catch(() => [])).filter((n) => POINT_RE.test(n));
        const dated = await Promise.all(names.map(async (n) => ({
            n,
            t: (await external_node_fs_.promises.stat(external_node_path_.join(dir, n)).catch(() => undefined))?.mtimeMs,
        })));
        const newest = dated
            .filter((d) => d.t !== undefined)
            .sort((a, b) => b.t - a.t)
            .slice(0, Math.max(0, limit));
        const points = await Promise.all(newest.map((d) => readJson(external_node_path_.join(dir, d.n))));
        return points.filter((p) => p !== undefined);
    }
    async setNeedsAttention(target, record) {
        const file = external_node_path_.join(this.targetDir(target), DIR_LAYOUT.needsAttention);
        if (record === null) {
            await external_node_fs_.promises.rm(file, { force: true });
            return;
        }
        await this.ensureDir(target);
        await (0,atomic_file/* writeFileAtomic */.Zf)(file, JSON.stringify(record) + '\n');
    }
    async getNeedsAttention(target) {
        return readJson(external_node_path_.join(this.targetDir(target), DIR_LAYOUT.needsAttention));
    }
}
function stateOf(seen, staleAfterMs) {
    if (!seen)
        return { held: false };
    const staleAfterSeconds = Math.ceil(staleAfterMs / 1000);
    const heartbeatAgeSeconds = Math.floor(seen.ageMs / 1000);
    return {
        held: true,
        owner: seen.owner,
        heartbeatAgeSeconds,
        // The same rule lock() applies, so an operator is never told "stale" about a lock a run would not take over.
        stale: seen.ageMs >= staleAfterMs,
        staleAfterSeconds,
    };
}
async function readOrEmpty(file) {
    try {
        return await external_node_fs_.promises.readFile(file, 'utf8');
    }
    catch (err) {
        if (isCode(err, 'ENOENT'))
            return '';
        throw err;
    }
}
/** A JSON object file, or undefined when it is missing or not a JSON object (never half a file: see writeFileAtomic). */
async function readJson(file) {
    const text = await readOrEmpty(file);
    if (!text)
        return undefined;
    try {
        const v = JSON.parse(text);
        return v && typeof v === 'object' ? v : undefined;
    }
    catch {
        return undefined;
    }
}

;// CONCATENATED MODULE: ./src/targets/state/open.ts



/**
 * The StateStore a target's `state:` setting names. `target` is only for the error message. Stores are shared
 * per location, so every target of a run that keeps its state in one directory uses one store object.
 */
function openStateStore(settings, target, cache = new Map()) {
    if (!external_node_path_.isAbsolute(settings.path))
        throw new errors/* DeployError */.sH('config', `targets.${target}.state.path: expected an absolute directory on the runner, got ${JSON.stringify(settings.path)}`);
    const key = `dir:${external_node_path_.resolve(settings.path)}`;
    let store = cache.get(key);
    if (!store) {
        store = new DirStateStore(external_node_path_.resolve(settings.path));
        cache.set(key, store);
    }
    return store;
}

// EXTERNAL MODULE: ./src/targets/vercel/errors.ts
var vercel_errors = __webpack_require__(5261);
;// CONCATENATED MODULE: ./src/targets/vercel/requests.ts


/**
 * Pure builders for what the Vercel target sends: team scoping, the deployment body, git sources, file
 * digests, and the metadata that lets a later job find the rollback point from Vercel alone.
 */
/** `?teamId=` for a team id (team_...), `?slug=` for a team slug; nothing for a personal account. */
function teamQuery(team) {
    if (!team)
        return {};
    return team.startsWith('team_') ? { teamId: team } : { slug: team };
}
/**
 * Deployment metadata keys. Vercel keeps `meta` with the deployment and returns it with the project's production
 * deployment, so any job can read which release is live and where its rollback returns to without our state store.
 */
const META = {
    release: 'hdRelease',
    commit: 'hdCommit',
    previous: 'hdPrevious',
    runId: 'hdRunId',
    stage: 'hdStage',
    recordedAt: 'hdRecordedAt',
};
function deploymentMeta(p) {
    return {
        [META.release]: p.release,
        [META.commit]: p.commit,
        // Meta values are strings: '' stands for "nothing was live before".
        [META.previous]: p.previous ?? '',
        [META.runId]: p.runId ?? '',
        [META.stage]: p.stage,
        [META.recordedAt]: p.recordedAt,
    };
}
/** The rollback point a deployment's metadata records for `release`, or undefined when it is not that release's. */
function pointFromMeta(meta, release, fallbackTime) {
    if (!meta || meta[META.release] !== release)
        return undefined;
    return {
        release,
        previous: meta[META.previous] ? meta[META.previous] : null,
        recordedAt: meta[META.recordedAt] || new Date(fallbackTime ?? 0).toISOString(),
        runId: meta[META.runId] || undefined,
    };
}
/** A branch or tag name as Vercel's git source wants it: without the `refs/heads/` / `refs/tags/` prefix. */
function gitRef(ref) {
    return ref.replace(/^refs\/(heads|tags)\//, '');
}
const FULL_SHA = /^[0-9a-f]{40}$/;
/**
 * The `gitSource` for the commit being deployed, through the project's git integration. The commit is always the
 * full SHA, so Vercel builds exactly this commit and not whatever `ref` points at when the build starts.
 */
function gitSourceFor(target, source, release) {
    if (!FULL_SHA.test(release.commit))
        throw new errors/* DeployError */.sH('config', `targets.${target}: a git source needs the full 40-character commit SHA, got ${JSON.stringify(release.commit)}`);
    const ref = gitRef(release.ref) || release.commit;
    const sha = release.commit;
    if (source.provider === 'gitlab')
        return { type: 'gitlab', projectId: source.repo, ref, sha };
    const parts = source.repo.split('/');
    if (parts.length !== 2 || !parts[0] || !parts[1])
        throw new errors/* DeployError */.sH('config', `targets.${target}.source.repo: expected "owner/name" for ${source.provider}, got ${JSON.stringify(source.repo)}`);
    const [owner, name] = parts;
    if (source.provider === 'bitbucket')
        return { type: 'bitbucket', owner, slug: name, ref, sha };
    return { type: 'github', org: owner, repo: name, ref, sha };
}
/** SHA1 of each file: POST /v2/files takes the content with its digest in `x-vercel-digest`. */
function fileDigests(files) {
    return files.map((f) => ({
        path: f.path,
        sha: (0,external_node_crypto_.createHash)('sha1').update(f.data).digest('hex'),
        size: f.data.length,
        data: f.data,
    }));
}
function fileEntries(digests) {
    return digests.map((d) => ({ file: d.path, sha: d.sha, size: d.size }));
}
function createDeploymentBody(p) {
    const body = { name: p.projectName, project: p.projectId, meta: p.meta };
    if (p.kind === 'production-from-preview') {
        if (!p.fromDeployment)
            throw new errors/* DeployError */.sH('internal', 'a production build from a preview needs its id');
        body.deploymentId = p.fromDeployment;
    }
    else if (p.gitSource)
        body.gitSource = p.gitSource;
    else if (p.files)
        body.files = p.files;
    else
        throw new errors/* DeployError */.sH('internal', 'a deployment needs a git source or files');
    if (p.kind !== 'preview') {
        body.target = 'production';
        body.autoAssignCustomDomains = false;
    }
    return body;
}

;// CONCATENATED MODULE: ./src/targets/vercel/api.ts





const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const SERVER_RETRIES = 2;
const UPLOAD_PARALLEL = 8;
function str(v) {
    return typeof v === 'string' ? v : undefined;
}
function strMap(v) {
    const out = {};
    if (v && typeof v === 'object')
        for (const [k, x] of Object.entries(v))
            if (typeof x === 'string')
                out[k] = x;
    return out;
}
function strList(v) {
    return Array.isArray(v) ? v.filter((x) => typeof x === 'string') : [];
}
function malformed(what, field) {
    return new errors/* DeployError */.sH('unreachable', `${what}: Vercel's answer has no ${field}; is api_url a Vercel API?`);
}
function readDeployment(body, what) {
    const b = (body ?? {});
    const id = str(b.id);
    const readyState = str(b.readyState);
    if (!id)
        throw malformed(what, 'deployment id');
    if (!readyState)
        throw malformed(what, 'readyState');
    return {
        id,
        url: str(b.url) ?? '',
        readyState: readyState,
        readySubstate: str(b.readySubstate),
        readyStateReason: str(b.readyStateReason),
        target: str(b.target) ?? null,
        meta: strMap(b.meta),
        alias: strList(b.alias),
        errorCode: str(b.errorCode),
        errorMessage: str(b.errorMessage) ?? null,
        createdAt: typeof b.createdAt === 'number' ? b.createdAt : undefined,
        projectId: str(b.projectId),
    };
}
function readProjectDeployment(v) {
    if (!v || typeof v !== 'object')
        return null;
    const b = v;
    const id = str(b.id);
    if (!id)
        return null;
    return {
        id,
        url: str(b.url) ?? '',
        readyState: str(b.readyState),
        meta: strMap(b.meta),
        alias: strList(b.alias),
        createdAt: typeof b.createdAt === 'number' ? b.createdAt : undefined,
    };
}
function readAliasRequest(v) {
    if (!v || typeof v !== 'object')
        return null;
    const b = v;
    const to = str(b.toDeploymentId);
    const jobStatus = str(b.jobStatus);
    if (!to || !jobStatus)
        return null;
    return {
        type: (str(b.type) ?? 'promote'),
        jobStatus: jobStatus,
        toDeploymentId: to,
        fromDeploymentId: str(b.fromDeploymentId) ?? null,
        requestedAt: typeof b.requestedAt === 'number' ? b.requestedAt : 0,
    };
}
function readProject(body, what) {
    const b = (body ?? {});
    const id = str(b.id);
    if (!id)
        throw malformed(what, 'project id');
    const targets = (b.targets ?? {});
    return {
        id,
        name: str(b.name) ?? id,
        accountId: str(b.accountId),
        production: readProjectDeployment(targets.production),
        lastAliasRequest: readAliasRequest(b.lastAliasRequest),
    };
}
class VercelApi {
    settings;
    deps;
    /** Requests sent (every attempt counts), for the report and the benchmark. */
    requests = 0;
    token;
    uploads = new Map();
    constructor(settings, deps) {
        this.settings = settings;
        this.deps = deps;
    }
    get pacing() {
        return this.deps.pacing;
    }
    /** The token, registered with the redactor before it can appear anywhere; a `config` error when unset. */
    bearer(what = 'Vercel') {
        if (this.token !== undefined)
            return this.token;
        const t = this.deps.env[this.settings.tokenEnv]?.trim();
        if (!t)
            throw new errors/* DeployError */.sH('config', `${what}: the Vercel token variable ${this.settings.tokenEnv} is not set (or empty) in the environment; set it from a secret, or name another variable in token_env`);
        this.deps.redactor.add(t, this.settings.tokenEnv);
        this.token = t;
        return t;
    }
    url(spec) {
        const u = new URL(spec.path, this.settings.apiUrl.endsWith('/') ? this.settings.apiUrl : `${this.settings.apiUrl}/`);
        for (const [k, v] of Object.entries({ ...spec.query, ...teamQuery(this.settings.team) }))
            u.searchParams.set(k, v);
        return u.toString();
    }
    /** What a message calls the request: method and path with the team query, never a header. */
    label(spec) {
        const u = new URL(this.url(spec));
        return `${spec.method} ${u.pathname}${u.search}`;
    }
    redact(text) {
        return this.deps.redactor.redact(text);
    }
    async send(spec, o) {
        const signal = o.signal ?? this.deps.signal;
        const token = this.bearer(o.what);
        const budget = { waitedMs: 0 };
        const pacing = this.deps.pacing;
        const label = this.label(spec);
        for (let attempt = 0;; attempt++) {
            if (signal.aborted)
                throw new errors/* DeployError */.sH('cancelled', `${o.what}: cancelled before ${label}`);
            await pacing.beforeRequest(spec.op, budget, signal, o.what);
            const headers = {
                authorization: `Bearer ${token}`,
                accept: 'application/json',
                'user-agent': 'homelab-deploy',
            };
            let body;
            if (spec.raw) {
                Object.assign(headers, spec.raw.headers);
                body = spec.raw.data;
            }
            else if (spec.json !== undefined) {
                headers['content-type'] = 'application/json';
                body = JSON.stringify(spec.json);
            }
            this.requests++;
            let res;
            try {
                res = await this.fetchOnce(this.url(spec), spec.method, headers, body, signal);
            }
            catch (e) {
                const err = this.transportError(e, label, o.what, signal);
                if (spec.idempotent && attempt < SERVER_RETRIES && err.errorClass !== 'cancelled') {
                    await (0,duration/* sleep */.yy)(500 * 2 ** attempt, signal);
                    continue;
                }
                throw err;
            }
            const until = (0,vercel_errors/* exhaustedUntil */.cJ)(res.headers);
            if (until !== undefined)
                pacing.closeGate(spec.op, until);
            let parsed = undefined;
            if (res.text) {
                try {
                    parsed = JSON.parse(res.text);
                }
                catch {
                    parsed = res.text;
                }
            }
            if (res.status >= 200 && res.status < 300)
                return { status: res.status, body: parsed };
            const quota = (0,vercel_errors/* dailyQuotaOf */.h1)(res.status, parsed);
            if (quota)
                throw pacing.stopForQuota(quota, o.what);
            if (res.status === 429) {
                // Honour the later of what the answer names (Retry-After, the reset), so the retry is not refused again.
                const named = (0,vercel_errors/* rateLimitWaitMs */.JR)(res.headers, parsed) ?? Math.min(60_000, 1000 * 2 ** attempt);
                const ms = Math.max(named, until !== undefined ? until - Date.now() : 0);
                await pacing.rateLimited(spec.op, ms, budget, signal, o.what);
                continue;
            }
            if (res.status >= 500 && spec.idempotent && attempt < SERVER_RETRIES) {
                await (0,duration/* sleep */.yy)(500 * 2 ** attempt, signal);
                continue;
            }
            throw this.statusError(spec, res.status, parsed, label, o.what);
        }
    }
    async fetchOnce(url, method, headers, body, signal) {
        // One controller for the time limit and the run's cancellation, with a plain timer: the body read below stays
        // under the same limit as the request.
        const ac = new AbortController();
        const timer = setTimeout(() => ac.abort(new TimeoutSignal()), this.settings.requestTimeoutMs);
        const onAbort = () => ac.abort(new CancelSignal());
        if (signal.aborted)
            onAbort();
        else
            signal.addEventListener('abort', onAbort, { once: true });
        try {
            const res = await fetch(url, { method, headers, body, signal: ac.signal });
            const text = await res.text();
            return { status: res.status, headers: res.headers, text };
        }
        catch (e) {
            if (ac.signal.aborted)
                throw ac.signal.reason;
            throw e;
        }
        finally {
            clearTimeout(timer);
            signal.removeEventListener('abort', onAbort);
        }
    }
    transportError(e, label, what, signal) {
        if (e instanceof CancelSignal || signal.aborted)
            return new errors/* DeployError */.sH('cancelled', `${what}: cancelled during ${label}`);
        if (e instanceof TimeoutSignal)
            return new errors/* DeployError */.sH('timeout', `${what}: ${label} got no complete answer within ${(0,duration/* formatDuration */.a3)(this.settings.requestTimeoutMs)}`);
        const cause = e.cause;
        const detail = cause?.code ?? cause?.message ?? (e instanceof Error ? e.message : String(e));
        return new errors/* DeployError */.sH('unreachable', this.redact(`${what}: could not reach the Vercel API at ${new URL(this.settings.apiUrl).origin} for ${label} (${detail})`), { cause: e });
    }
    statusError(spec, status, body, label, what) {
        const e = (0,vercel_errors/* errorBodyOf */.iE)(body);
        const said = e.message ?? (typeof body === 'string' ? body.slice(0, 200) : '');
        const hint = (0,vercel_errors/* statusHint */.o6)(status, spec.op, this.settings.tokenEnv);
        const team = this.settings.team ? ` (team ${this.settings.team})` : '';
        return new errors/* DeployError */.sH((0,vercel_errors/* classifyStatus */.xo)(status, spec.op), this.redact(`${what}: ${label} answered ${status}${e.code ? ` ${e.code}` : ''}${said ? `: ${said}` : ''}${team}${hint ? `; ${hint}` : ''}`));
    }
    async getProject(idOrName, o) {
        const r = await this.send({
            op: 'get-project',
            method: 'GET',
            path: `v9/projects/${encodeURIComponent(idOrName)}`,
            idempotent: true,
        }, o);
        return readProject(r.body, o.what);
    }
    async createDeployment(body, o) {
        // Not idempotent: a lost answer may still have created the deployment, and a second one costs quota.
        const r = await this.send({ op: 'create-deployment', method: 'POST', path: 'v13/deployments', json: body, idempotent: false }, o);
        return readDeployment(r.body, o.what);
    }
    async getDeployment(idOrUrl, o) {
        const r = await this.send({
            op: 'get-deployment',
            method: 'GET',
            path: `v13/deployments/${encodeURIComponent(idOrUrl)}`,
            idempotent: true,
        }, o);
        return readDeployment(r.body, o.what);
    }
    async cancelDeployment(id, o) {
        const r = await this.send({
            op: 'cancel-deployment',
            method: 'PATCH',
            path: `v12/deployments/${encodeURIComponent(id)}/cancel`,
            idempotent: true,
        }, o);
        return readDeployment(r.body, o.what);
    }
    async promote(projectId, deploymentId, o) {
        await this.send({
            op: 'promote',
            method: 'POST',
            path: `v10/projects/${encodeURIComponent(projectId)}/promote/${encodeURIComponent(deploymentId)}`,
            json: {},
            idempotent: true,
        }, o);
    }
    async rollback(projectId, deploymentId, description, o) {
        await this.send({
            op: 'rollback',
            method: 'POST',
            path: `v1/projects/${encodeURIComponent(projectId)}/rollback/${encodeURIComponent(deploymentId)}`,
            query: { description },
            idempotent: true,
        }, o);
    }
    async listAliases(deploymentId, o) {
        const r = await this.send({
            op: 'list-aliases',
            method: 'GET',
            path: `v2/deployments/${encodeURIComponent(deploymentId)}/aliases`,
            idempotent: true,
        }, o);
        const list = Array.isArray(r.body?.aliases) ? r.body.aliases : [];
        return list
            .filter((a) => typeof a?.alias === 'string')
            .map((a) => ({ alias: a.alias, uid: str(a.uid) ?? '', redirect: str(a.redirect) ?? null }));
    }
    /**
     * Uploads every file Vercel does not have from this run yet. Files are content-addressed per team, so the same
     * content deployed to many projects of one team is sent once.
     */
    async ensureUploaded(files, o) {
        const fresh = [];
        const pending = [];
        for (const f of files) {
            const known = this.uploads.get(f.sha);
            if (known)
                pending.push(known);
            else if (!fresh.some((x) => x.sha === f.sha))
                fresh.push(f);
        }
        const started = fresh.map((f) => {
            let resolve;
            let reject;
            const p = new Promise((res, rej) => ((resolve = res), (reject = rej)));
            // A failed upload is forgotten, so a later attempt sends it again.
            p.catch(() => this.uploads.delete(f.sha));
            this.uploads.set(f.sha, p);
            return { f, resolve, reject, p };
        });
        await (0,concurrency/* mapLimit */.s)(started, UPLOAD_PARALLEL, async (u) => {
            try {
                await this.send({
                    op: 'upload-file',
                    method: 'POST',
                    path: 'v2/files',
                    raw: {
                        data: u.f.data,
                        headers: {
                            'content-type': 'application/octet-stream',
                            'content-length': String(u.f.size),
                            'x-vercel-digest': u.f.sha,
                        },
                    },
                    idempotent: true,
                }, { ...o, what: `${o.what} (upload ${u.f.path})` });
                u.resolve();
            }
            catch (e) {
                u.reject(e);
            }
        });
        await Promise.all([...pending, ...started.map((u) => u.p)]);
    }
}
class TimeoutSignal extends Error {
}
class CancelSignal extends Error {
}

// EXTERNAL MODULE: ./src/targets/vercel/pacing.ts
var vercel_pacing = __webpack_require__(1434);
;// CONCATENATED MODULE: ./src/targets/vercel/shared.ts


const DEFAULT_VERCEL_RUN_SETTINGS = {
    plan: 'pro',
    maxRateLimitWaitMs: vercel_pacing/* DEFAULT_MAX_RATE_LIMIT_WAIT_MS */.jE,
    requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
};
/**
 * Hands every Vercel target of a run the client and pacing of its team and token, so that targets of one team
 * share one build limit, one daily count and one set of rate-limit gates, and targets of different teams do not
 * hold each other back.
 */
class VercelClients {
    ctx;
    settings;
    byKey = new Map();
    constructor(ctx, settings = DEFAULT_VERCEL_RUN_SETTINGS) {
        this.ctx = ctx;
        this.settings = settings;
    }
    for(config) {
        const key = JSON.stringify([config.apiUrl, config.team ?? '', config.tokenEnv]);
        let hit = this.byKey.get(key);
        if (!hit) {
            const label = `${config.team ? `team ${config.team}` : 'the personal account'} (token ${config.tokenEnv})`;
            const pacing = new vercel_pacing/* VercelPacing */.Mk(label, this.settings, {
                log: (message) => this.ctx.emit({ type: 'log', level: 'warn', message: this.ctx.redactor.redact(message) }),
            });
            const api = new VercelApi({
                apiUrl: config.apiUrl,
                team: config.team,
                tokenEnv: config.tokenEnv,
                requestTimeoutMs: this.settings.requestTimeoutMs,
            }, { env: this.ctx.env, redactor: this.ctx.redactor, pacing, signal: this.ctx.signal });
            hit = { api, pacing };
            this.byKey.set(key, hit);
        }
        return hit;
    }
    /** Requests sent by every client of the run. */
    get requests() {
        let n = 0;
        for (const { api } of this.byKey.values())
            n += api.requests;
        return n;
    }
    get all() {
        return [...this.byKey.values()];
    }
}

;// CONCATENATED MODULE: ./src/targets/vercel/target.ts






const DEFAULT_VERCEL_TIMINGS = { promoteTimeoutMs: 180_000, domainsTimeoutMs: 60_000 };
const TERMINAL = new Set(['READY', 'ERROR', 'CANCELED']);
/** Limits a call by wall time with a plain timer; `parent` (the run's cancellation) aborts it too. */
function boundedSignal(ms, parent) {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), ms);
    const onAbort = () => ac.abort();
    if (parent?.aborted)
        ac.abort();
    else
        parent?.addEventListener('abort', onAbort, { once: true });
    return {
        signal: ac.signal,
        dispose: () => {
            clearTimeout(timer);
            parent?.removeEventListener('abort', onAbort);
        },
    };
}
class VercelTarget {
    ctx;
    config;
    shared;
    kind = 'vercel';
    name;
    timings;
    project;
    /** A READY build of this release from an earlier attempt of this run, not yet live: a retry checks it again. */
    candidate;
    /** The deployment this run made production. */
    live;
    building = new Set();
    /** Counts kill() calls: a create in flight while one ran is cancelled once its answer names the deployment. */
    kills = 0;
    urls = new Map();
    /** Deployment id → the release this tool deployed there (its meta), for old versions' health checks. */
    releases = new Map();
    groups = new ProcessGroups();
    constructor(ctx, config, shared) {
        this.ctx = ctx;
        this.config = config;
        this.shared = shared;
        this.name = config.name;
        this.timings = { ...DEFAULT_VERCEL_TIMINGS, ...shared.timings };
    }
    get api() {
        return this.shared.api;
    }
    get pacing() {
        return this.shared.pacing;
    }
    get store() {
        return this.shared.store;
    }
    call(what, signal) {
        return { what: `${this.name}: ${what}`, signal };
    }
    remember(d) {
        if (d.url)
            this.urls.set(d.id, d.url);
        const rel = d.meta?.[META.release];
        if (rel)
            this.releases.set(d.id, rel);
    }
    async readProject(what, signal) {
        const p = await this.api.getProject(this.config.project, this.call(what, signal));
        this.project = p;
        if (p.production)
            this.remember(p.production);
        return p;
    }
    lockOwner(phase) {
        return lockOwner(this.ctx, this.name, phase);
    }
    async preflight(phase) {
        this.api.bearer(`${this.name}: pre-flight`);
        const project = await this.readProject('pre-flight');
        const prod = project.production;
        const current = prod?.id ?? null;
        if (prod && this.config.domains.length > 0) {
            // A domain that does not follow production now would not follow a promotion either: refuse before touching.
            const aliases = (await this.api.listAliases(prod.id, this.call('pre-flight'))).map((a) => a.alias);
            const missing = this.config.domains.filter((d) => !aliases.includes(d));
            if (missing.length > 0)
                throw new errors/* DeployError */.sH('config', `${this.name}: ${missing.join(', ')} ${missing.length === 1 ? 'does' : 'do'} not point at the production deployment ${prod.id} of project ${project.name} (its aliases: ${aliases.join(', ') || 'none'}), so a promotion would not move ${missing.length === 1 ? 'it' : 'them'}; check targets.${this.name}.domains against the project's domains on Vercel`, { host: this.name, phase });
        }
        const r = await this.store.lock(this.name, this.lockOwner(phase), {
            staleAfterMs: this.ctx.config.lock.staleAfterMs,
            takeoverStale: this.ctx.config.lock.takeoverStale,
        });
        if (!r.ok) {
            const h = r.holder;
            const who = h
                ? `${h.actor ?? 'unknown actor'} (run ${h.runUrl ?? h.runId ?? h.token}, commit ${h.commit.slice(0, 12)}, phase ${h.phase}) since ${h.startedAt}`
                : 'an unknown owner (no readable owner record)';
            throw new errors/* DeployError */.sH('lock-held', `${this.name} is locked by ${who}; last heartbeat ${r.ageSeconds}s ago (lock kept in ${this.store.describe})`, { host: this.name, phase });
        }
        return {
            current,
            onNew: !this.ctx.force && prod?.meta[META.release] === this.ctx.release.id,
            prepared: false,
            lock: r.ours ? 'ours' : 'tookOverFrom' in r ? 'taken-over' : 'acquired',
            detail: {
                project: project.id,
                production: current,
                productionUrl: prod?.url ? `https://${prod.url}` : null,
                state: this.store.describe,
            },
        };
    }
    heartbeat() {
        return this.store.heartbeat(this.name, this.ctx.runToken);
    }
    releaseLock() {
        return this.store.unlock(this.name, this.ctx.runToken);
    }
    async snapshot(previous) {
        if (previous === undefined)
            return { point: await this.readRollbackPoint() };
        const point = {
            release: this.ctx.release.id,
            previous,
            recordedAt: new Date().toISOString(),
            runId: this.ctx.run.id,
            token: this.ctx.runToken,
        };
        await this.store.writeRollbackPoint(this.name, point);
        await this.store.appendAudit(this.name, {
            time: point.recordedAt,
            action: 'snapshot',
            host: this.name,
            release: point.release,
            previous,
            runId: this.ctx.run.id,
        });
        return { point };
    }
    async readRollbackPoint() {
        const stored = await this.store.readRollbackPoint(this.name, this.ctx.release.id);
        if (stored)
            return stored;
        // Another runner's job recorded it: the live deployment's metadata says where its rollback returns to.
        const prod = (await this.readProject('read rollback point')).production;
        return pointFromMeta(prod?.meta, this.ctx.release.id, prod?.createdAt);
    }
    buildBody(kind, stage, previous, project, from) {
        const { ctx, config } = this;
        const meta = deploymentMeta({
            release: ctx.release.id,
            commit: ctx.release.commit,
            previous,
            runId: ctx.run.id,
            stage,
            recordedAt: new Date().toISOString(),
        });
        if (kind === 'production-from-preview')
            return {
                body: createDeploymentBody({
                    kind,
                    projectId: project.id,
                    projectName: project.name,
                    meta,
                    fromDeployment: from,
                }),
            };
        if (config.source.type === 'git')
            return {
                body: createDeploymentBody({
                    kind,
                    projectId: project.id,
                    projectName: project.name,
                    meta,
                    gitSource: gitSourceFor(this.name, config.source, ctx.release),
                }),
            };
        if (ctx.files.length === 0)
            throw new errors/* DeployError */.sH('config', `targets.${this.name}.source: files, but the release has no files to upload (is the config's source directory empty?)`);
        const digests = fileDigests(ctx.files);
        return {
            body: createDeploymentBody({
                kind,
                projectId: project.id,
                projectName: project.name,
                meta,
                files: fileEntries(digests),
            }),
            digests,
        };
    }
    /** Creates one deployment within the build limit and waits for its end; a failed build resolves, it does not throw. */
    async build(kind, stage, previous, from) {
        const what = kind === 'preview'
            ? 'preview build'
            : kind === 'production-from-preview'
                ? 'production build of the checked preview'
                : 'staged production build';
        const project = this.project ?? (await this.readProject(what));
        const { body, digests } = this.buildBody(kind, stage, previous, project, from);
        const t0 = Date.now();
        // Uploads first: they count against no quota, and a slow upload must not hold one of the team's build slots.
        if (digests)
            await this.api.ensureUploaded(digests, this.call(what));
        const slot = await this.pacing.startBuild(`${this.name}: ${what}`, this.ctx.signal);
        let created;
        const killsBefore = this.kills;
        try {
            try {
                created = await this.api.createDeployment(body, this.call(what));
            }
            catch (e) {
                // Refused outright (auth, config, a state conflict): Vercel created nothing, so nothing counts.
                const c = (0,errors/* toDeployError */.pH)(e).errorClass;
                if (c === 'auth' || c === 'config' || c === 'precondition' || c === vercel_errors/* QUOTA */.ju)
                    slot.unreserve();
                throw e;
            }
            slot.created();
            this.building.add(created.id);
            this.remember(created);
            // kill() may have run while the create was in flight: it could not know this id yet.
            if (this.kills !== killsBefore)
                await this.cancelQuietly(created.id);
            const final = await this.waitBuild(created, what);
            this.remember(final);
            const ok = final.readyState === 'READY';
            const why = [final.errorCode, final.errorMessage, final.readyStateReason].filter(Boolean).join(': ');
            const step = {
                name: kind === 'preview'
                    ? 'build-preview'
                    : kind === 'production-from-preview'
                        ? 'build-production'
                        : 'build',
                command: `POST /v13/deployments (${kind === 'preview' ? 'preview' : 'target production, no domains'}) → ${final.id}`,
                exitCode: ok ? 0 : final.readyState === 'CANCELED' ? null : 1,
                durationMs: Date.now() - t0,
                ok,
                output: this.ctx.redactor.redact(`deployment ${final.id} ${final.readyState}${final.url ? ` at https://${final.url}` : ''}${why ? `: ${why}` : ''}`),
            };
            return ok ? { ok: true, deployment: final, step } : { ok: false, deployment: final, step };
        }
        finally {
            if (created)
                this.building.delete(created.id);
            slot.done();
        }
    }
    /**
     * Polls until the build ends. Whenever we stop waiting before that (the build limit, a BLOCKED deployment, the
     * run cancelled, an error while polling), the build is cancelled: nobody would promote it, and it would hold
     * one of the team's concurrent builds.
     */
    async waitBuild(created, what) {
        const deadline = Date.now() + this.config.buildTimeoutMs;
        let d = created;
        try {
            while (!TERMINAL.has(d.readyState)) {
                if (d.readyState === 'BLOCKED')
                    throw new errors/* DeployError */.sH('precondition', `${this.name}: deployment ${d.id} is BLOCKED by Vercel${d.readyStateReason ? ` (${d.readyStateReason})` : ''}; it waits for someone on the team to allow it and was cancelled`, { host: this.name });
                const left = deadline - Date.now();
                if (left <= 0)
                    throw new errors/* DeployError */.sH('timeout', `${this.name}: deployment ${d.id} was still ${d.readyState} after ${(0,duration/* formatDuration */.a3)(this.config.buildTimeoutMs)} (build_timeout); it was cancelled`, { host: this.name });
                await (0,duration/* sleep */.yy)(Math.min(this.config.pollIntervalMs, left), this.ctx.signal);
                if (this.ctx.signal.aborted)
                    throw new errors/* DeployError */.sH('cancelled', `${this.name}: cancelled during the build`);
                d = await this.api.getDeployment(d.id, this.call(what));
            }
            return d;
        }
        catch (e) {
            await this.cancelQuietly(d.id);
            if (this.ctx.signal.aborted && (0,errors/* toDeployError */.pH)(e).errorClass === 'cancelled')
                throw new errors/* DeployError */.sH('cancelled', `${this.name}: cancelled while deployment ${d.id} was ${d.readyState}; it was cancelled`, {
                    host: this.name,
                });
            throw e;
        }
    }
    async cancelQuietly(id) {
        // The run's signal may be the reason we cancel; the cancel request gets its own short limit.
        const b = boundedSignal(15_000);
        try {
            await this.api.cancelDeployment(id, this.call('cancel build', b.signal));
        }
        catch {
            /* already ended, or Vercel cannot be reached: the build ends by its own limit */
        }
        finally {
            b.dispose();
        }
    }
    async deploy(opts) {
        const steps = [];
        const fail = (step, switched, extra = {}) => {
            steps.push(step);
            return { ok: false, switched, steps, failed: step, ...extra };
        };
        const mode = this.config.promote;
        let cand = this.candidate;
        if (!cand || cand.meta[META.release] !== this.ctx.release.id) {
            const r = await this.build(mode === 'preview' ? 'preview' : 'staged-production', opts.stage, opts.previous);
            if (!r.ok)
                return fail(r.step, false, { detail: this.detail(r.deployment) });
            steps.push(r.step);
            cand = r.deployment;
            this.candidate = cand;
        }
        // Throws HealthFailed when unhealthy: nothing was switched, production still serves the previous deployment.
        const health = await opts.checkBeforeActivate(this.subjectFor(opts.stage, cand, this.ctx.release.id));
        let live = cand;
        if (mode === 'preview') {
            const r = await this.build('production-from-preview', opts.stage, opts.previous, cand.id);
            if (!r.ok)
                return fail(r.step, false, { health, detail: this.detail(r.deployment) });
            steps.push(r.step);
            live = r.deployment;
        }
        const project = this.project ?? (await this.readProject('promote'));
        const t0 = Date.now();
        try {
            await this.api.promote(project.id, live.id, this.call('promote'));
        }
        catch (e) {
            const err = (0,errors/* toDeployError */.pH)(e);
            if (err.errorClass === 'cancelled')
                throw err;
            // The request may have reached Vercel before the answer was lost: count it as switched.
            return fail(this.failedStep('promote', t0, err), true, {
                health,
                detail: { errorClass: err.errorClass },
            });
        }
        try {
            await this.waitProduction(live.id, 'promote', this.ctx.signal);
        }
        catch (e) {
            const err = (0,errors/* toDeployError */.pH)(e);
            if (err.errorClass === 'cancelled')
                throw err;
            return fail(this.failedStep('promote', t0, err), true, {
                health,
                detail: { errorClass: err.errorClass },
            });
        }
        steps.push({
            name: 'promote',
            command: `POST /v10/projects/${project.id}/promote/${live.id}`,
            exitCode: 0,
            durationMs: Date.now() - t0,
            ok: true,
            output: `production of ${project.name} is ${live.id}`,
        });
        this.live = live;
        this.candidate = undefined;
        const t1 = Date.now();
        try {
            const out = await this.waitDomains(live.id, this.ctx.signal);
            if (out)
                steps.push({ name: 'domains', exitCode: 0, durationMs: Date.now() - t1, ok: true, output: out });
        }
        catch (e) {
            const err = (0,errors/* toDeployError */.pH)(e);
            if (err.errorClass === 'cancelled')
                throw err;
            return fail(this.failedStep('domains', t1, err), true, {
                health,
                version: live.id,
                detail: { errorClass: err.errorClass },
            });
        }
        return { ok: true, switched: true, version: live.id, steps, health, detail: this.detail(live) };
    }
    failedStep(name, t0, err) {
        return {
            name,
            exitCode: null,
            durationMs: Date.now() - t0,
            ok: false,
            output: this.ctx.redactor.redact(`${err.errorClass}: ${err.message}`),
        };
    }
    detail(d) {
        return {
            deployment: d.id,
            readyState: d.readyState,
            url: d.url ? `https://${d.url}` : null,
            errorCode: d.errorCode ?? null,
        };
    }
    /** Polls the project until its production deployment is `id`; a failed switch job or the deadline throws. */
    async waitProduction(id, kind, signal) {
        const deadline = Date.now() + this.timings.promoteTimeoutMs;
        for (;;) {
            const p = await this.readProject(`wait for ${kind}`, signal);
            if (p.production?.id === id)
                return;
            const job = p.lastAliasRequest;
            if (job && job.toDeploymentId === id && job.jobStatus === 'failed')
                throw new errors/* DeployError */.sH('command-failed', `${this.name}: Vercel's ${kind} of ${p.name} to ${id} failed (lastAliasRequest.jobStatus failed); production is still ${p.production?.id ?? 'none'}`, { host: this.name });
            const left = deadline - Date.now();
            if (left <= 0)
                throw new errors/* DeployError */.sH('timeout', `${this.name}: ${kind} of ${p.name} to ${id} was not done after ${(0,duration/* formatDuration */.a3)(this.timings.promoteTimeoutMs)}; production is still ${p.production?.id ?? 'none'}${job ? ` (job ${job.type} → ${job.toDeploymentId}: ${job.jobStatus})` : ''}`, { host: this.name });
            await (0,duration/* sleep */.yy)(Math.min(this.config.pollIntervalMs, left), signal);
            if (signal.aborted)
                throw new errors/* DeployError */.sH('cancelled', `${this.name}: cancelled while waiting for the ${kind}`);
        }
    }
    /** Waits until every configured domain is an alias of `id`; the text for the step, or undefined without domains. */
    async waitDomains(id, signal) {
        const domains = this.config.domains;
        if (domains.length === 0)
            return undefined;
        const deadline = Date.now() + this.timings.domainsTimeoutMs;
        for (;;) {
            const aliases = (await this.api.listAliases(id, this.call('check domains', signal))).map((a) => a.alias);
            const missing = domains.filter((d) => !aliases.includes(d));
            if (missing.length === 0)
                return `${domains.join(', ')} → ${id}`;
            const left = deadline - Date.now();
            if (left <= 0)
                throw new errors/* DeployError */.sH('health-failed', `${this.name}: after ${(0,duration/* formatDuration */.a3)(this.timings.domainsTimeoutMs)}, ${missing.join(', ')} still ${missing.length === 1 ? 'does' : 'do'} not point at ${id} (its aliases: ${aliases.join(', ') || 'none'})`, { host: this.name });
            await (0,duration/* sleep */.yy)(Math.min(this.config.pollIntervalMs, left), signal);
            if (signal.aborted)
                throw new errors/* DeployError */.sH('cancelled', `${this.name}: cancelled while checking domains`);
        }
    }
    vars(stage, deployment) {
        const { ctx, config } = this;
        const domain = config.domains[0];
        const own = deployment?.url ? `https://${deployment.url}` : undefined;
        const prodUrl = this.project?.production?.url;
        const vars = {
            'target.name': this.name,
            'target.kind': 'vercel',
            'target.project': config.project,
            // A deployment's own URL: `url` is a host name without scheme, served over HTTPS.
            'target.url': own ?? (domain ? `https://${domain}` : undefined),
            'target.deployment': deployment?.id,
            'target.deployment_url': own,
            'target.domain': domain,
            'target.production_url': domain ? `https://${domain}` : prodUrl ? `https://${prodUrl}` : undefined,
            'release.id': ctx.release.id,
            'release.commit': ctx.release.commit,
            project: ctx.config.project,
            'stage.name': stage,
        };
        for (const [k, v] of Object.entries(config.vars))
            vars[`target.vars.${k}`] = v;
        return vars;
    }
    /**
     * A deployment's health subject. The release a check's marker must see is this run's for its own deployments;
     * an older deployment's is the one its meta names, and unknown for one this tool did not make (then markers are
     * not checked: any release answering is the old one).
     */
    subjectFor(stage, deployment, release) {
        const { ctx } = this;
        const env = {
            HD_PROJECT: ctx.config.project,
            HD_TARGET: this.name,
            HD_RELEASE: ctx.release.id,
            HD_COMMIT: ctx.release.commit,
            HD_STAGE: stage,
        };
        const vars = this.vars(stage, deployment);
        if (vars['target.url'])
            env.HD_URL = vars['target.url'];
        for (const [k, v] of Object.entries(this.config.vars))
            env[`HD_VAR_${k.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`] = v;
        return {
            name: this.name,
            vars,
            env,
            release,
            exec: (command, o) => runLocal(command, {
                cwd: ctx.config.dir,
                env: { ...ctx.env, ...env },
                timeoutMs: o.timeoutMs,
                signal: o.signal,
                redact: (t) => ctx.redactor.redact(t),
                groups: this.groups,
            }),
        };
    }
    healthSubject(stage, version) {
        if (version === undefined) {
            const id = this.live?.id ?? this.candidate?.id;
            return this.subjectFor(stage, id ? { id, url: this.urls.get(id) } : undefined, this.ctx.release.id);
        }
        const id = version ?? undefined;
        return this.subjectFor(stage, id ? { id, url: this.urls.get(id) } : undefined, id ? this.releases.get(id) : undefined);
    }
    async rollback(opts) {
        const t0 = Date.now();
        if (opts.to === null)
            throw new errors/* DeployError */.sH('precondition', `${this.name}: nothing to roll back to: project ${this.config.project} had no production deployment before this run, and a Vercel rollback needs an earlier production deployment; take the project offline or redeploy by hand`, { host: this.name, phase: opts.stage });
        const to = opts.to;
        // A rollback runs also when the run was cancelled: Vercel switches by itself once asked, so the request gets a
        // signal of its own, and a cancelled run waits only handOverWaitMs for the switch.
        const waitMs = opts.handOverWaitMs ?? this.timings.promoteTimeoutMs + this.timings.domainsTimeoutMs;
        const b = boundedSignal(waitMs + 30_000);
        const step = (ok, output, name = 'rollback') => ({
            name,
            command: name === 'rollback'
                ? `POST /v1/projects/${this.project?.id ?? this.config.project}/rollback/${to}`
                : undefined,
            exitCode: ok ? 0 : null,
            durationMs: Date.now() - t0,
            ok,
            output: this.ctx.redactor.redact(output),
        });
        try {
            const p = await this.readProject('rollback', b.signal);
            const actions = [];
            if (p.production?.id !== to) {
                await this.api.rollback(p.id, to, `homelab-deploy: back from release ${this.ctx.release.id}${this.ctx.run.id ? ` (run ${this.ctx.run.id})` : ''}`, this.call('rollback', b.signal));
                actions.push(`instant rollback of Vercel project ${p.name} to ${to} (from ${p.production?.id ?? 'none'})`);
                if (opts.handOverWaitMs !== undefined) {
                    const hand = boundedSignal(opts.handOverWaitMs);
                    try {
                        await this.waitProduction(to, 'rollback', hand.signal);
                    }
                    catch {
                        const s = step(true, `rollback to ${to} requested; Vercel completes the switch on its side`);
                        return { ok: true, steps: [s], pending: true, handedOver: true, actions };
                    }
                    finally {
                        hand.dispose();
                    }
                }
                else
                    await this.waitProduction(to, 'rollback', b.signal);
            }
            const steps = [step(true, `production of ${p.name} is ${to}`)];
            const t1 = Date.now();
            const domains = await this.waitDomains(to, b.signal);
            if (domains)
                steps.push({ name: 'domains', exitCode: 0, durationMs: Date.now() - t1, ok: true, output: domains });
            await this.store.appendAudit(this.name, {
                time: new Date().toISOString(),
                action: 'rollback',
                host: this.name,
                release: this.ctx.release.id,
                to,
                runId: this.ctx.run.id,
            });
            this.live = undefined;
            return { ok: true, steps, actions };
        }
        catch (e) {
            const err = (0,errors/* toDeployError */.pH)(e);
            const s = step(false, `${err.errorClass}: ${err.message}`);
            return { ok: false, steps: [s], failed: s };
        }
        finally {
            b.dispose();
        }
    }
    async settle(opts) {
        await this.appendLog({
            event: 'deploy',
            stage: opts.stage,
            version: this.live?.id ?? this.project?.production?.id ?? null,
            previous: opts.previous,
            unchanged: opts.unchanged,
            durationMs: opts.durationMs,
        });
        await this.store.setNeedsAttention(this.name, null);
    }
    async markNeedsAttention(record) {
        await this.store.setNeedsAttention(this.name, record);
    }
    async appendLog(entry) {
        const { ctx } = this;
        await this.store.appendReleaseLog(this.name, {
            time: new Date().toISOString(),
            target: this.name,
            release: ctx.release.id,
            commit: ctx.release.commit,
            runId: ctx.run.id,
            runUrl: ctx.run.url,
            actor: ctx.run.actor,
            ...entry,
        });
    }
    async readCurrent(opts = {}) {
        const b = opts.timeoutMs !== undefined ? boundedSignal(opts.timeoutMs, this.ctx.signal) : undefined;
        try {
            const prod = (await this.readProject('read current', b?.signal)).production;
            return { version: prod?.id ?? null, onNew: prod?.meta[META.release] === this.ctx.release.id };
        }
        finally {
            b?.dispose();
        }
    }
    async kill() {
        this.kills++;
        const b = boundedSignal(15_000);
        try {
            await Promise.all([
                ...[...this.building].map((id) => this.api.cancelDeployment(id, this.call('cancel build', b.signal)).catch(() => undefined)),
                this.groups.killAll(),
            ]);
        }
        finally {
            b.dispose();
        }
    }
    async close() {
        /* HTTP connections are pooled by the runtime and shared by every target */
    }
    async status() {
        const staleAfterMs = this.ctx.config.lock.staleAfterMs;
        const [lock, log, points, attention] = await Promise.all([
            this.store.lockState(this.name, staleAfterMs),
            this.store.readReleaseLog(this.name),
            this.store.listRollbackPoints(this.name, 20),
            this.store.getNeedsAttention(this.name),
        ]);
        const recent = log
            .split('\n')
            .filter((l) => l.trim())
            .map((l) => {
            try {
                return JSON.parse(l);
            }
            catch {
                return { unreadable: l.slice(0, 200) };
            }
        });
        const st = {
            host: this.name,
            kind: 'vercel',
            reachable: false,
            lock,
            recent: recent.slice(-10),
            rollbackPoints: points,
            needsAttention: attention,
        };
        try {
            const p = await this.readProject('status');
            const prod = p.production;
            st.reachable = true;
            st.current = prod?.id ?? null;
            st.empty = !prod;
            st.previous =
                prod?.meta[META.previous] ||
                    points.find((x) => x.release === prod?.meta[META.release])?.previous ||
                    null;
            const seen = new Set([st.current ?? '']);
            st.releases = recent
                .map((e) => e.version)
                .filter((v) => typeof v === 'string' && !!v)
                .reverse()
                .filter((v) => !seen.has(v) && (seen.add(v), true));
            st.extra = {
                project: p.id,
                projectName: p.name,
                productionUrl: prod?.url ? `https://${prod.url}` : null,
                productionRelease: prod?.meta[META.release] ?? null,
                domains: this.config.domains,
                lastAliasRequest: p.lastAliasRequest,
            };
        }
        catch (e) {
            st.error = this.ctx.redactor.redact((0,errors/* toDeployError */.pH)(e).message);
        }
        return st;
    }
    releaseLockAsOperator(opts) {
        return this.store.releaseAsOperator(this.name, {
            ...opts,
            staleAfterMs: this.ctx.config.lock.staleAfterMs,
        });
    }
    readReleaseLog() {
        return this.store.readReleaseLog(this.name);
    }
}
function createVercelTarget(ctx, config, shared) {
    return new VercelTarget(ctx, config, shared);
}

;// CONCATENATED MODULE: ./src/targets/index.ts







/**
 * The targets of one run, made on first use and shared by every phase: SSH hosts share one connection pool (jump
 * hosts included). Closing the set closes everything the targets hold open.
 */
class TargetSet {
    ctx;
    made = new Map();
    pool;
    stores = new Map();
    vercel;
    constructor(ctx, opts = {}) {
        this.ctx = ctx;
        this.pool = new ConnectionPool(ctx.config, {
            env: ctx.env,
            redactor: ctx.redactor,
            runToken: ctx.runToken,
            fallbackKey: opts.fallbackKey,
            fallbackKnownHosts: opts.fallbackKnownHosts,
        });
    }
    get(name) {
        let t = this.made.get(name);
        if (t)
            return t;
        const config = this.ctx.config.targets[name];
        if (!config)
            throw new errors/* DeployError */.sH('config', `unknown target "${name}"`);
        switch (config.kind) {
            case 'ssh':
                t = new SshTarget(this.ctx, config, { pool: this.pool });
                break;
            case 'runner':
                t = createRunnerTarget(this.ctx, config, openStateStore(config.state, name, this.stores));
                break;
            case 'vercel': {
                // One set of clients per run: targets of one team and token share its build slots, quota and rate limits.
                this.vercel ??= new VercelClients(this.ctx, {
                    plan: config.limits.plan,
                    concurrentBuilds: config.limits.concurrentBuilds,
                    deploymentsPerDay: config.limits.deploymentsPerDay,
                    maxRateLimitWaitMs: DEFAULT_VERCEL_RUN_SETTINGS.maxRateLimitWaitMs,
                    requestTimeoutMs: DEFAULT_VERCEL_RUN_SETTINGS.requestTimeoutMs,
                });
                t = createVercelTarget(this.ctx, config, {
                    ...this.vercel.for(config),
                    store: openStateStore(config.state, name, this.stores),
                });
                break;
            }
        }
        this.made.set(name, t);
        return t;
    }
    /** Stops what this run still runs on every target it touched. */
    async killAll() {
        await this.pool.killAll();
        await Promise.all([...this.made.values()].filter((t) => t.kind !== 'ssh').map((t) => t.kill().catch(() => undefined)));
    }
    async closeAll() {
        await Promise.all([...this.made.values()].filter((t) => t.kind !== 'ssh').map((t) => t.close().catch(() => undefined)));
        await this.pool.closeAll();
    }
}
function createTargets(ctx, opts = {}) {
    return new TargetSet(ctx, opts);
}


/***/ }),

/***/ 830:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   Xq: () => (/* binding */ appendLine),
/* harmony export */   Zf: () => (/* binding */ writeFileAtomic),
/* harmony export */   g$: () => (/* binding */ sweepTempFiles),
/* harmony export */   t_: () => (/* binding */ fsyncDir)
/* harmony export */ });
/* unused harmony export TEMP_MARK */
/* harmony import */ var node_crypto__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(7598);
/* harmony import */ var node_crypto__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__webpack_require__.n(node_crypto__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(3024);
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_1___default = /*#__PURE__*/__webpack_require__.n(node_fs__WEBPACK_IMPORTED_MODULE_1__);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(6760);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_2___default = /*#__PURE__*/__webpack_require__.n(node_path__WEBPACK_IMPORTED_MODULE_2__);



/** Temp files of an atomic replace carry this in their name; readers of a state directory skip them. */
const TEMP_MARK = '.tmp-';
/**
 * Makes a rename or a new entry in `dir` durable. Without it a power cut after the rename can bring back the old
 * name on some file systems, even though the data itself was synced.
 */
async function fsyncDir(dir) {
    const h = await node_fs__WEBPACK_IMPORTED_MODULE_1__.promises.open(dir, 'r');
    try {
        await h.sync();
    }
    catch (err) {
        // Some file systems (and some platforms) cannot sync a directory handle; the rename is still atomic there.
        const code = err.code;
        if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM')
            throw err;
    }
    finally {
        await h.close();
    }
}
/**
 * Replaces `file` so a reader sees the old content or the new, never a mix or a half file: the data goes to a
 * temp file in the same directory (same file system, so the rename is atomic), is synced, renamed over the old
 * name, and the directory is synced. A process killed part way leaves at most a `.<name>.tmp-*` file behind.
 */
async function writeFileAtomic(file, data, mode = 0o644) {
    const dir = node_path__WEBPACK_IMPORTED_MODULE_2__.dirname(file);
    const tmp = node_path__WEBPACK_IMPORTED_MODULE_2__.join(dir, `.${node_path__WEBPACK_IMPORTED_MODULE_2__.basename(file)}${TEMP_MARK}${(0,node_crypto__WEBPACK_IMPORTED_MODULE_0__.randomBytes)(6).toString('hex')}`);
    const h = await node_fs__WEBPACK_IMPORTED_MODULE_1__.promises.open(tmp, 'wx', mode);
    try {
        await h.writeFile(data);
        await h.sync();
    }
    catch (err) {
        await h.close().catch(() => undefined);
        await node_fs__WEBPACK_IMPORTED_MODULE_1__.promises.rm(tmp, { force: true });
        throw err;
    }
    await h.close();
    try {
        await node_fs__WEBPACK_IMPORTED_MODULE_1__.promises.rename(tmp, file);
    }
    catch (err) {
        await node_fs__WEBPACK_IMPORTED_MODULE_1__.promises.rm(tmp, { force: true });
        throw err;
    }
    await fsyncDir(dir);
}
/**
 * Appends one line with a single write(2) on an O_APPEND descriptor, so lines appended at the same time by
 * several processes never interleave on a local file system (the kernel positions and writes each call whole).
 */
async function appendLine(file, line, mode = 0o644) {
    if (line.includes('\n'))
        throw new Error(`a log line must be one line: ${JSON.stringify(line.slice(0, 80))}`);
    const buf = Buffer.from(line + '\n', 'utf8');
    const h = await node_fs__WEBPACK_IMPORTED_MODULE_1__.promises.open(file, 'a', mode);
    try {
        const { bytesWritten } = await h.write(buf, 0, buf.length, null);
        if (bytesWritten !== buf.length)
            throw new Error(`short write to ${file}: ${bytesWritten} of ${buf.length} bytes (disk full?)`);
        await h.datasync();
    }
    finally {
        await h.close();
    }
}
/** Removes `.tmp-` leftovers of writers that were killed, once they are old enough to belong to nobody. */
async function sweepTempFiles(dir, olderThanMs) {
    const names = await node_fs__WEBPACK_IMPORTED_MODULE_1__.promises.readdir(dir).catch(() => []);
    const now = Date.now();
    await Promise.all(names
        .filter((n) => n.startsWith('.') && n.includes(TEMP_MARK))
        .map(async (n) => {
        const p = node_path__WEBPACK_IMPORTED_MODULE_2__.join(dir, n);
        const st = await node_fs__WEBPACK_IMPORTED_MODULE_1__.promises.lstat(p).catch(() => undefined);
        if (st && st.isFile() && now - st.mtimeMs > olderThanMs)
            await node_fs__WEBPACK_IMPORTED_MODULE_1__.promises.rm(p, { force: true });
    }));
}


/***/ })

};
;