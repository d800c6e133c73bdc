"use strict";
exports.id = 209;
exports.ids = [209];
exports.modules = {

/***/ 7209:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

// ESM COMPAT FLAG
__webpack_require__.r(__webpack_exports__);

// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  deploy: () => (/* binding */ deploy),
  isFailure: () => (/* reexport */ report_status/* isFailure */.N),
  prepare: () => (/* reexport */ prepare/* prepare */.i),
  rollback: () => (/* binding */ rollback)
});

// EXTERNAL MODULE: ./src/config/load.ts + 32 modules
var load = __webpack_require__(7102);
// EXTERNAL MODULE: ./src/errors.ts
var errors = __webpack_require__(3916);
// EXTERNAL MODULE: external "node:child_process"
var external_node_child_process_ = __webpack_require__(1421);
// EXTERNAL MODULE: external "node:path"
var external_node_path_ = __webpack_require__(6760);
;// CONCATENATED MODULE: ./src/git/ref.ts



/**
 * Refs come from workflow inputs and branch names, which attackers can choose. Only a conservative subset of
 * git's ref syntax is accepted, and only the resolved 40-hex SHA ever travels further.
 */
const SAFE_REF = /^[A-Za-z0-9_][A-Za-z0-9._/+-]*$/;
/** Longer refs are refused: git's own limit for a ref name is the file name limit of 255 bytes. */
const MAX_REF_LENGTH = 255;
function validateRef(ref) {
    const why = !ref
        ? 'it is empty'
        : ref.length > MAX_REF_LENGTH
            ? `it is ${ref.length} characters long; at most ${MAX_REF_LENGTH} are accepted`
            : ref.startsWith('-')
                ? 'it starts with "-" and could be read as an option'
                : !SAFE_REF.test(ref)
                    ? 'it contains characters outside [A-Za-z0-9._/+-]'
                    : ref.includes('..') || ref.endsWith('/') || ref.endsWith('.lock') || ref.includes('//')
                        ? 'it is not a valid git ref name'
                        : undefined;
    if (why)
        throw new errors/* DeployError */.sH('config', `ref ${JSON.stringify(ref)} rejected: ${why}`);
}
function git(args, cwd) {
    return (0,external_node_child_process_.execFileSync)('git', args, {
        cwd,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        maxBuffer: 64 * 1024 * 1024,
    }).trim();
}
function repoRoot(dir) {
    try {
        return git(['rev-parse', '--show-toplevel'], dir);
    }
    catch {
        throw new errors/* DeployError */.sH('config', `${dir} is not inside a git repository; homelab-deploy deploys committed files`);
    }
}
/** Resolves a ref to the full commit SHA on the runner, before anything runs anywhere. */
function resolveRef(ref, dir) {
    validateRef(ref);
    const root = repoRoot(dir);
    try {
        const sha = git(['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`], root);
        if (!/^[0-9a-f]{40}$/.test(sha))
            throw new Error(sha);
        return sha;
    }
    catch {
        throw new errors/* DeployError */.sH('config', `ref ${JSON.stringify(ref)} does not name a commit in ${external_node_path_.basename(root)} (fetch it first?)`);
    }
}

// EXTERNAL MODULE: ./src/plan/prepare.ts
var prepare = __webpack_require__(5264);
// EXTERNAL MODULE: external "node:crypto"
var external_node_crypto_ = __webpack_require__(7598);
// EXTERNAL MODULE: ./src/util/duration.ts
var duration = __webpack_require__(6518);
// EXTERNAL MODULE: ./src/util/template.ts
var template = __webpack_require__(5664);
// EXTERNAL MODULE: ./src/health/http.ts
var http = __webpack_require__(7132);
// EXTERNAL MODULE: external "node:net"
var external_node_net_ = __webpack_require__(7030);
;// CONCATENATED MODULE: ./src/health/tcp.ts

/** Connects to host:port and closes; a refused or silent port fails with what happened. */
function probeTcp(target, timeoutMs, signal) {
    const i = target.lastIndexOf(':');
    const host = target.slice(0, i).replace(/^\[|\]$/g, '');
    const port = Number(target.slice(i + 1));
    return new Promise((resolve) => {
        const started = performance.now();
        const s = external_node_net_.connect({ host, port });
        const done = (r) => {
            clearTimeout(timer);
            signal.removeEventListener('abort', abort);
            s.destroy();
            resolve(r);
        };
        const abort = () => done({ ok: false, detail: `tcp ${target}: cancelled` });
        const timer = setTimeout(() => done({ ok: false, detail: `tcp ${target}: no connection within ${timeoutMs}ms` }), timeoutMs);
        signal.addEventListener('abort', abort, { once: true });
        s.once('connect', () => done({ ok: true, detail: `connected in ${Math.round(performance.now() - started)}ms` }));
        s.once('error', (e) => done({ ok: false, detail: `tcp ${target}: ${e.code ?? e.message}` }));
    });
}

;// CONCATENATED MODULE: ./src/health/run.ts





async function probeCommand(subject, check, command, o) {
    // Where the command runs enforces whole seconds and adds a grace period; this timer is the hard limit.
    const timer = AbortSignal.timeout(o.timeoutMs);
    try {
        const res = await subject.exec(command, {
            timeoutMs: o.timeoutMs,
            signal: AbortSignal.any([o.signal, timer]),
        });
        const out = (res.stdout + res.stderr).trim();
        const x = check.expect;
        if (x.exitCode !== undefined && res.code !== x.exitCode)
            return {
                ok: false,
                detail: `exit ${res.code ?? res.signal}, expected ${x.exitCode}: ${(0,http/* excerpt */.K)(out, o.redact)}`,
            };
        if (x.output !== undefined && !out.includes(x.output))
            return {
                ok: false,
                detail: `output does not contain ${JSON.stringify(x.output)}: ${(0,http/* excerpt */.K)(out, o.redact)}`,
            };
        if (x.outputRegex !== undefined && !new RegExp(x.outputRegex).test(out))
            return { ok: false, detail: `output does not match /${x.outputRegex}/: ${(0,http/* excerpt */.K)(out, o.redact)}` };
        return { ok: true, detail: `exit ${res.code}` };
    }
    catch (err) {
        // The attempt's own time limit fired (not the run's cancellation): a slow check, not a broken target.
        if (timer.aborted && !o.signal.aborted)
            return { ok: false, detail: `no result within ${o.timeoutMs}ms` };
        // A lost connection is the target's problem, not the check's: let it fail the deploy with its own class.
        if (err instanceof errors/* DeployError */.sH && err.errorClass !== 'timeout')
            throw err;
        return { ok: false, detail: err.message };
    }
}
async function probeComposeOf(subject, check, o) {
    if (!subject.compose)
        return { ok: false, detail: `${subject.name} has no compose stack to check` };
    const timer = AbortSignal.timeout(o.timeoutMs);
    try {
        return await subject.compose(check, {
            timeoutMs: o.timeoutMs,
            signal: AbortSignal.any([o.signal, timer]),
        });
    }
    catch (err) {
        if (timer.aborted && !o.signal.aborted)
            return { ok: false, detail: `no result within ${o.timeoutMs}ms` };
        throw err;
    }
}
function probe(subject, check, target, o) {
    switch (check.kind) {
        case 'http':
            return (0,http/* probeHttp */.x)(check, target, subject.release, o);
        case 'tcp':
            return probeTcp(target, o.timeoutMs, o.signal);
        case 'command':
            return probeCommand(subject, check, target, o);
        case 'compose':
            return probeComposeOf(subject, check, o);
    }
}
/**
 * Runs one check against one host: waits the start period, then probes every interval until `successes`
 * consecutive passes (healthy), more than `retries` failures (unhealthy), or the deadline. A check that flaps
 * never collects K passes in a row, so it cannot promote a release.
 */
async function runHealthCheck(ctx, subject, check) {
    const started = Date.now();
    const vars = subject.vars;
    const where = `health check "${check.name}"`;
    // A command check is shell code: its values are quoted so an address or host var cannot inject commands.
    const target = check.kind === 'compose'
        ? check.target
        : check.kind === 'command'
            ? (0,template/* renderShellTemplate */.Nz)(check.target, vars, where)
            : (0,template/* renderTemplate */.Xm)(check.target, vars, where);
    // Header values are templates too (validate checks them per target); the probe gets a rendered copy.
    const probed = check.kind === 'http' && Object.keys(check.headers).length > 0
        ? {
            ...check,
            headers: Object.fromEntries(Object.entries(check.headers).map(([k, v]) => [
                k,
                (0,template/* renderTemplate */.Xm)(v, vars, `${where} header ${k}`),
            ])),
        }
        : check;
    const deadline = check.deadlineMs !== undefined ? started + check.deadlineMs : Infinity;
    if (check.startPeriodMs > 0)
        await (0,duration/* sleep */.yy)(Math.min(check.startPeriodMs, deadline - Date.now()), ctx.signal);
    let attempts = 0;
    let failures = 0;
    let streak = 0;
    let last = { ok: false, detail: 'not run' };
    let lastFailure;
    let verdict;
    let latency;
    for (;;) {
        if (ctx.signal.aborted) {
            verdict = 'cancelled';
            break;
        }
        if (Date.now() >= deadline) {
            verdict = `deadline of ${(0,duration/* formatDuration */.a3)(check.deadlineMs ?? 0)} reached after ${attempts} attempts (${streak}/${check.successes} consecutive passes)`;
            break;
        }
        attempts++;
        // A hard limit per attempt: the check's timeout, and never past the overall deadline.
        const timeoutMs = Math.max(1, Math.min(check.timeoutMs, deadline - Date.now()));
        const t0 = performance.now();
        last = await probe(subject, probed, target, {
            timeoutMs,
            signal: ctx.signal,
            redact: (text) => ctx.redactor.redact(text),
        });
        const ms = Math.round(performance.now() - t0);
        latency = { lastMs: ms, maxMs: Math.max(latency?.maxMs ?? 0, ms) };
        if (last.ok) {
            if (++streak >= check.successes)
                break;
        }
        else {
            streak = 0;
            // An attempt the deadline cut short says only that time ran out (the verdict says so already); the error
            // worth reporting is what the last full attempt saw.
            if (timeoutMs >= check.timeoutMs || lastFailure === undefined)
                lastFailure = last.detail;
            if (++failures > check.retries)
                break;
        }
        await (0,duration/* sleep */.yy)(Math.min(check.intervalMs, Math.max(0, deadline - Date.now())), ctx.signal);
    }
    const ok = streak >= check.successes && !verdict;
    let lastError;
    if (!ok) {
        const why = verdict ??
            (failures > check.retries ? `failed ${failures} times (retries: ${check.retries})` : 'unhealthy');
        lastError = ctx.redactor.redact(`${why}; last error: ${lastFailure ?? last.detail}`);
    }
    return { check: check.name, ok, attempts, durationMs: Date.now() - started, lastError, latency };
}
/** All checks of a stage against one host; the checks run in parallel, each with its own timing. */
async function runHealthChecks(ctx, subject, checks) {
    return Promise.all(checks.map((c) => runHealthCheck(ctx, subject, c)));
}

// EXTERNAL MODULE: ./src/plan/plan.ts
var plan_plan = __webpack_require__(8720);
// EXTERNAL MODULE: ./src/run/context.ts
var context = __webpack_require__(670);
// EXTERNAL MODULE: ./src/targets/index.ts + 36 modules
var src_targets = __webpack_require__(906);
// EXTERNAL MODULE: ./src/util/concurrency.ts
var concurrency = __webpack_require__(3731);
;// CONCATENATED MODULE: ./src/pipeline/manual-rollback.ts







const PHASE = 'rollback';
/**
 * `homelab-deploy rollback`: switches targets back to a recorded version without building anything, with the
 * same locks, audit trail and report as a deploy. Each target is locked, asked what it runs and what it can
 * return to, rolled back, checked with its stage's health checks on the old version, and unlocked; targets go
 * in parallel (`defaults.parallel`), so a fleet rolls back in the time of a few.
 */
async function runManualRollback(opts) {
    const started = Date.now();
    const { config, redactor } = opts;
    const signal = opts.signal ?? new AbortController().signal;
    const runToken = opts.runToken ?? (0,external_node_crypto_.randomBytes)(6).toString('hex');
    const audit = [];
    const emit = (e) => {
        try {
            void opts.onEvent?.(redactor.redactDeep(e));
        }
        catch {
            /* a listener must never break a rollback */
        }
    };
    const release = { id: opts.to, commit: '', ref: opts.to };
    const ctx = {
        config,
        release: { ...release, commit: '0'.repeat(40) },
        run: opts.run ?? {},
        runToken,
        redactor,
        signal,
        env: opts.env,
        files: [],
        emit,
        audit: (action, host, detail) => void audit.push({ time: new Date().toISOString(), action, host, detail }),
        errorInfo: (0,context/* errorInfoWith */.V)(redactor),
    };
    const stageOf = new Map();
    for (const s of config.stages)
        for (const t of s.targets)
            stageOf.set(t, s.name);
    const names = opts.targets?.length ? (0,plan_plan/* selectRunTargets */.AH)(config, opts.targets) : [...stageOf.keys()];
    const base = {
        schema: 1,
        project: config.project,
        startedAt: new Date(started).toISOString(),
        release: { id: opts.to, commit: '', ref: opts.to },
        run: opts.run ?? {},
        phasesRequested: [PHASE],
        audit,
    };
    if (names.length > config.checkpointAbove && !opts.confirmed)
        return {
            ...base,
            status: 'aborted',
            phase: PHASE,
            systemsDeployed: [],
            durationSeconds: 0,
            finishedAt: new Date().toISOString(),
            error: {
                class: 'precondition',
                message: `this rollback would touch ${names.length} targets, more than checkpoint.above (${config.checkpointAbove}): confirm it with --yes; nothing was touched`,
                phase: PHASE,
            },
            phases: [],
            hosts: [],
        };
    const targets = (0,src_targets/* createTargets */.T)(ctx, opts);
    emit({
        type: 'run-start',
        project: config.project,
        release: `rollback to ${opts.to}`,
        commit: '',
        phases: [PHASE],
    });
    emit({ type: 'phase-start', phase: PHASE, hosts: names });
    const results = await (0,concurrency/* mapLimit */.s)(names, config.parallel, (name) => rollbackTarget(ctx, targets.get(name), stageOf.get(name), opts.to));
    await targets.closeAll();
    const phase = {
        name: PHASE,
        kind: 'rollback',
        status: results.every((r) => r.host.ok) ? 'ok' : 'failed',
        startedAt: base.startedAt,
        durationMs: Date.now() - started,
        hosts: results.map((r) => r.host),
    };
    const failed = results.filter((r) => !r.host.ok);
    phase.error = failed[0]?.host.error;
    emit({
        type: 'phase-end',
        phase: PHASE,
        ok: failed.length === 0,
        durationMs: phase.durationMs,
        error: phase.error,
    });
    const durationSeconds = Math.round((Date.now() - started) / 100) / 10;
    const status = failed.length === 0 ? 'success' : failed.length === results.length ? 'failed' : 'partial_success';
    emit({ type: 'run-end', status, durationSeconds });
    const finals = results.map((r) => r.final);
    const report = {
        ...base,
        status,
        phase: PHASE,
        systemsDeployed: finals.filter((f) => f.rollback?.ok).map((f) => f.host),
        durationSeconds,
        finishedAt: new Date().toISOString(),
        error: failed.length
            ? {
                ...(failed[0].host.error ?? { class: 'internal', message: 'rollback failed' }),
                message: `rollback failed on ${failed.map((f) => f.host.host).join(', ')}: ${failed[0].host.error?.message}`,
            }
            : undefined,
        rollbackFailed: failed.some((f) => f.final.rollback && !f.final.rollback.ok) || undefined,
        phases: [phase],
        hosts: finals,
        needsAttention: failed.length ? failed.map((f) => f.host.host) : undefined,
    };
    return redactor.redactDeep(report);
}
async function rollbackTarget(ctx, t, stage, to) {
    const t0 = Date.now();
    const rep = {
        host: t.name,
        ok: false,
        durationMs: 0,
        attempts: [],
        steps: [],
        health: [],
    };
    const final = {
        host: t.name,
        kind: t.kind,
        stage,
        before: null,
        after: null,
        state: 'unknown',
    };
    let locked = false;
    try {
        const pre = await t.preflight(PHASE);
        locked = true;
        const st = t.rollbackFacts ? await t.rollbackFacts() : await t.status();
        const current = st.current ?? pre.current;
        final.before = current;
        const target = to === 'previous' ? st.previous : to;
        if (target === undefined || target === null)
            throw new errors/* DeployError */.sH('precondition', `${t.name} has no recorded version to return to from ${current ?? 'nothing'} (no rollback point, no release-log line)`, { host: t.name });
        if (to !== 'previous' && st.releases && !st.releases.includes(target) && target !== current)
            throw new errors/* DeployError */.sH('precondition', `${t.name} has no release ${JSON.stringify(target)} to return to; it has ${st.releases.join(', ') || 'none'}`, { host: t.name });
        const rb = { ok: false, to: target, durationMs: 0 };
        if (target === current) {
            rb.ok = true;
            rep.detail = { unchanged: true };
        }
        else {
            const out = await t.rollback({ stage: stage ?? PHASE, to: target, from: current ?? undefined });
            rep.steps = out.steps;
            if (!out.ok)
                throw new errors/* DeployError */.sH('command-failed', `rollback step "${out.failed?.name}" on ${t.name} failed: ${(out.failed?.output ?? '').trim().slice(-300)}`, { host: t.name });
            const checks = ctx.config.stages.find((s) => s.name === stage)?.health ?? [];
            if (checks.length) {
                rep.health = await runHealthChecks(ctx, t.healthSubject(stage ?? PHASE, target), checks);
                const bad = rep.health.filter((h) => !h.ok);
                if (bad.length)
                    throw new errors/* DeployError */.sH('health-failed', `${t.name} after rollback to ${target}: ${bad.map((b) => `${b.check}: ${b.lastError}`).join('; ')}`, { host: t.name });
            }
            rb.ok = true;
            ctx.audit('rollback', t.name, `to ${target} (manual)`);
        }
        rb.durationMs = Date.now() - t0;
        rep.rollback = rb;
        rep.ok = true;
        final.after = target;
        final.state = 'previous';
        final.rollback = rb;
    }
    catch (err) {
        rep.error = ctx.errorInfo(err, { host: t.name, phase: PHASE });
        final.rollback = {
            ok: false,
            to: to === 'previous' ? null : to,
            durationMs: Date.now() - t0,
            error: rep.error,
        };
        const cur = await t.readCurrent().catch(() => undefined);
        if (cur) {
            final.after = cur.version;
            final.state = cur.version === null ? 'none' : 'previous';
        }
    }
    finally {
        if (locked)
            await t.releaseLock().catch(() => false);
        await t.close().catch(() => undefined);
    }
    rep.durationMs = Date.now() - t0;
    ctx.emit({
        type: 'host-end',
        phase: PHASE,
        host: t.name,
        ok: rep.ok,
        durationMs: rep.durationMs,
        error: rep.error,
        attempt: 1,
    });
    return { host: rep, final };
}

// EXTERNAL MODULE: external "node:events"
var external_node_events_ = __webpack_require__(8474);
// EXTERNAL MODULE: ./src/run/release.ts
var run_release = __webpack_require__(800);
;// CONCATENATED MODULE: ./src/pipeline/run-state.ts
/** Thrown inside the pipeline to stop it; carries the status the failure rules decided. */
class Stop extends Error {
    status;
    info;
    constructor(status, info) {
        super(info.message);
        this.status = status;
        this.info = info;
    }
}
function targetRun(state, name) {
    const h = state.runs.get(name);
    if (!h)
        throw new Error(`internal: target ${name} is not part of this run`);
    return h;
}
function record(state, action, target, detail) {
    state.ctx.audit(action, target, detail);
}
/**
 * A time limit for cleanup work: the normal one, or what is left of the cancellation budget minus `reserveMs`
 * (kept for the steps after it, such as releasing locks).
 */
function cleanupTimeout(state, normalMs, reserveMs = 0) {
    if (state.cancelDeadline === undefined)
        return normalMs;
    return Math.max(250, Math.min(normalMs, state.cancelDeadline - Date.now() - reserveMs));
}

;// CONCATENATED MODULE: ./src/pipeline/finish.ts


/**
 * What every run does on its way out, whatever happened: env files go back where the target does not end on the
 * new release (or the run aborted: "nothing changed" includes them), and the lock is released on every target
 * pre-flight reached, also one where pre-flight was cut short after taking it (the release is token-guarded,
 * so another run's lock is never touched). Under cancellation everything here fits the remaining budget.
 */
async function cleanUp(state, status) {
    const { ctx } = state;
    const { config } = ctx;
    const runs = [...state.runs.values()];
    const restore = runs.filter((h) => h.envWritten && !h.rollback?.ok && (status === 'aborted' || !h.onNew));
    await (0,concurrency/* mapLimit */.s)(restore, config.parallel, async (h) => {
        const ok = await (h.target.restoreSecrets?.({ timeoutMs: cleanupTimeout(state, 30_000, 1000) }) ??
            Promise.resolve(undefined)).then((res) => res?.ok !== false, () => false);
        if (ok)
            record(state, 'env-restored', h.target.name, config.secrets?.file);
        else
            ctx.emit({
                type: 'log',
                level: 'warn',
                message: `${h.target.name}: restoring ${config.secrets?.file} failed; it holds this run's values while running ${h.before ?? 'nothing'}`,
            });
    });
    if (state.cancelDeadline !== undefined) {
        // The release log and the audit log say where a cancelled run left each target it held or had changed.
        await (0,concurrency/* mapLimit */.s)(runs.filter((h) => h.touched || (h.locked && !h.lockLost)), config.parallel, (h) => h.target
            .appendLog({ event: 'cancelled', stage: h.stage, previous: h.before, result: 'cancelled' }, { timeoutMs: cleanupTimeout(state, 30_000, 500) })
            .catch(() => undefined));
    }
    await (0,concurrency/* mapLimit */.s)(runs.filter((h) => h.attempted && !h.lockHandedOver && !h.lockLost && !h.lockReleased), config.parallel, async (h) => {
        let unsure;
        const released = await h.target
            .releaseLock({ timeoutMs: cleanupTimeout(state, 30_000) })
            .catch((err) => {
            unsure = ctx.errorInfo(err).message;
            return false;
        });
        if (unsure !== undefined) {
            // Nothing of this run may go on behind the report: a target where that cannot be made sure may still be
            // changing, so it counts as touched, is read back, and is `unknown` unless it answers.
            h.touched = true;
            ctx.emit({
                type: 'log',
                level: 'warn',
                message: `${h.target.name}: ${unsure}; its lock stays, and its state is unknown until someone looks`,
            });
        }
        else if (released)
            record(state, 'lock-released', h.target.name);
        else if (h.locked)
            ctx.emit({
                type: 'log',
                level: 'warn',
                message: `${h.target.name}: the deploy lock could not be released; the action's post step or \`homelab-deploy lock release\` frees it`,
            });
        // A target the final states will not ask again gives its connection back now: at fleet width, holding them
        // all until the report would cost one socket and session per target.
        if (!readsBack(state, h))
            await h.target.close().catch(() => undefined);
    });
}
/** Whether the final states read a target back rather than trust the bookkeeping (see finalStates). */
function readsBack(state, h) {
    // A fleet target whose flow ended deployed, healthy and settled is known; asking it again costs a connection each.
    const stale = !!h.rollback || (h.touched && !h.settled) || state.cancelDeadline !== undefined;
    return stale && h.attempted;
}
/**
 * Each target's final state. Where a rollback ran or the run was cut short, what is live is read back from the
 * target rather than trusted from bookkeeping; a target that cannot be read is `unknown`, never guessed. So is one
 * the run never read at all (its pre-flight failed or never ran): nothing is known of what it runs.
 */
async function finalStates(state) {
    return (0,concurrency/* mapLimit */.s)([...state.runs.values()], state.ctx.config.parallel, async (h) => {
        let after = h.onNew ? (h.newVersion ?? state.ctx.release.id) : h.before;
        let onNew = h.onNew;
        const read = h.locked || h.lockReleased || h.touched || h.onNew || !!h.rollback;
        let unknown = !read;
        if (readsBack(state, h)) {
            try {
                const cur = await h.target.readCurrent({ timeoutMs: cleanupTimeout(state, 30_000) });
                after = cur.version;
                onNew = cur.onNew;
                unknown = false;
            }
            catch {
                unknown = true;
                after = null;
            }
            await h.target.close().catch(() => undefined);
        }
        if (unknown)
            after = null;
        const hostState = unknown
            ? 'unknown'
            : onNew
                ? h.before !== null && h.before === (h.newVersion ?? state.ctx.release.id)
                    ? 'unchanged'
                    : 'new'
                : after === null
                    ? 'none'
                    : 'previous';
        return {
            host: h.target.name,
            kind: h.target.kind,
            stage: h.stage,
            // Never read before the end, but read then: the run changed nothing there, so it ran that before too.
            before: read || unknown ? h.before : after,
            after,
            state: hostState,
            rollback: h.rollback,
        };
    });
}

;// CONCATENATED MODULE: ./src/pipeline/heartbeats.ts

/**
 * Keeps each lock this run holds visibly alive from the moment it is taken, so no other run can call it stale
 * while we are still on other hosts' pre-flight. A lock found to be no longer ours (released by an operator or
 * taken over) stops the run: deploying on without the lock would race the new owner.
 */
class Heartbeats {
    everyMs;
    onLost;
    timers = new Map();
    inFlight = new Set();
    /** Targets whose beat is queued or on the wire: a slow beat is not stacked behind by the next one. */
    beating = new Set();
    idleSlots;
    /**
     * `idleConnections` bounds the connections that beats of idle targets open at once, on top of the targets
     * being worked on: a wave of hundreds of finished targets whose locks are kept must not open hundreds of
     * connections each time their beats come round.
     */
    constructor(everyMs, onLost, idleConnections = 2) {
        this.everyMs = everyMs;
        this.onLost = onLost;
        this.idleSlots = new concurrency/* Semaphore */.j(Math.max(1, idleConnections));
    }
    /**
     * `idle` says the target's part of the run is over while its lock is still held (a fleet that may yet roll it
     * back): each beat then opens a connection (within the idle bound) and gives it back, so held locks cost no
     * connections between beats.
     */
    start(host, idle = () => false) {
        if (this.timers.has(host.name))
            return;
        const t = setInterval(() => {
            if (this.beating.has(host.name))
                return;
            this.beating.add(host.name);
            const beat = this.beatOnce(host, idle)
                .finally(() => this.beating.delete(host.name))
                .then((ours) => {
                if (!ours && this.timers.has(host.name)) {
                    this.stop(host.name);
                    this.onLost(host.name);
                }
            }, 
            // A missed beat is not a lost lock: the connection may recover, and stale_after spans several beats.
            () => undefined);
            this.inFlight.add(beat);
            void beat.finally(() => this.inFlight.delete(beat));
        }, this.everyMs);
        t.unref();
        this.timers.set(host.name, t);
    }
    async beatOnce(host, idle) {
        if (!idle()) {
            try {
                return await host.heartbeat();
            }
            finally {
                // The target's work ended during the beat: the connection the beat used is not kept open.
                if (idle())
                    await host.close().catch(() => undefined);
            }
        }
        const release = await this.idleSlots.acquire();
        try {
            // The run may have stopped this target's beats while the beat waited for a slot: then it is not touched.
            if (!this.timers.has(host.name))
                return true;
            try {
                return await host.heartbeat();
            }
            finally {
                await host.close().catch(() => undefined);
            }
        }
        finally {
            release();
        }
    }
    stop(host) {
        clearInterval(this.timers.get(host));
        this.timers.delete(host);
    }
    /** Stops every beat and waits for those on the wire, so none is left behind on a connection about to close. */
    async stopAll() {
        for (const name of [...this.timers.keys()])
            this.stop(name);
        await Promise.all(this.inFlight);
    }
}
/**
 * How many beats of idle targets may be on the wire at once: a quarter of the widest stage, at least 2. A beat
 * is one short round trip, so even 1500 idle targets beating once a minute need only a few at a time.
 */
function idleBeatConnections(stageParallels) {
    return Math.max(2, Math.ceil(Math.max(0, ...stageParallels) / 4));
}
/** Often enough that stale_after spans three beats; never more than once every 2 s or less than once a minute. */
function heartbeatInterval(staleAfterMs) {
    return Math.max(2000, Math.min(60_000, staleAfterMs / 3));
}

// EXTERNAL MODULE: ./src/plan/window.ts
var plan_window = __webpack_require__(7511);
;// CONCATENATED MODULE: ./src/pipeline/gates.ts



/**
 * The deploy window: outside it a run touches nothing. It refuses, or waits for the window to open when asked
 * to; `--ignore-window` deploys anyway and says so in the audit trail.
 */
async function openWindow(state, opts) {
    const { ctx } = state;
    const w = ctx.config.window;
    if (!w || (0,plan_window/* inWindow */.g)(w, new Date()))
        return;
    if (opts.ignore) {
        record(state, 'window-ignored', ctx.config.project, `deployed outside the window ${w.text}`);
        ctx.emit({
            type: 'log',
            level: 'warn',
            message: `outside the deploy window (${w.text}): --ignore-window deploys anyway`,
        });
        return;
    }
    const opens = (0,plan_window/* nextOpening */.P)(w, new Date());
    const when = opens ? `it opens next at ${opens.toISOString()}` : 'it does not open within two weeks';
    if ((opts.wait || w.wait) && opens) {
        ctx.emit({
            type: 'log',
            level: 'info',
            message: `outside the deploy window (${w.text}); waiting: ${when}`,
        });
        await (0,duration/* sleep */.yy)(opens.getTime() - Date.now(), ctx.signal);
        if (!ctx.signal.aborted)
            return;
    }
    throw new Stop('aborted', {
        class: 'precondition',
        message: `outside the deploy window (${w.text}); ${when}. Nothing was touched. Wait for it (--wait-window, window.wait) or deploy anyway with --ignore-window (audited)`,
        phase: 'preflight',
    });
}
/**
 * A run that deploys to more targets than checkpoint.above needs someone to say yes first: on the command line
 * `--yes` (or the prompt), in a workflow the job behind the approval gate passes it on.
 */
function checkpoint(state, plan, confirmed) {
    const { config } = state.ctx;
    const n = plan.deploying.length;
    if (n <= config.checkpointAbove || confirmed)
        return;
    throw new Stop('aborted', {
        class: 'precondition',
        message: `this run would deploy to ${n} targets, more than checkpoint.above (${config.checkpointAbove}): confirm it (homelab-deploy run --yes, or the action's confirm input in the job behind the approval); nothing was touched`,
        phase: 'preflight',
    });
}

// EXTERNAL MODULE: external "node:fs"
var external_node_fs_ = __webpack_require__(3024);
// EXTERNAL MODULE: ./src/targets/state/atomic-file.ts
var atomic_file = __webpack_require__(830);
;// CONCATENATED MODULE: ./src/release/git-args.ts
/**
 * The git command lines of the release steps, as argument vectors (no shell ever parses them). Every name in them
 * was validated by names.ts; every revision is a full SHA or a fully spelled ref, never a user's expression.
 */
/** Where the sync check keeps the fetched branch tip: the ordinary remote-tracking ref. */
function trackingRef(rb) {
    return `refs/remotes/${rb.remote}/${rb.branch}`;
}
/**
 * An explicit refspec, so the tracking ref is updated whatever the clone's `remote.<name>.fetch` says (a
 * single-branch clone or actions/checkout's narrow fetch would otherwise leave it stale). No tags, no submodules:
 * the check needs one commit and its history.
 */
function fetchBranchArgs(rb) {
    return [
        'fetch',
        '--no-tags',
        '--no-recurse-submodules',
        '--no-write-fetch-head',
        rb.remote,
        `+refs/heads/${rb.branch}:${trackingRef(rb)}`,
    ];
}
function remoteUrlArgs(remote) {
    return ['remote', 'get-url', remote];
}
/** Resolves a fully spelled ref to the commit it names; exit 1 with no output when it does not exist. */
function resolveCommitArgs(ref) {
    return ['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`];
}
/** Exit 0: `ancestor` is reachable from `commit` (or is it); exit 1: it is not. */
function isAncestorArgs(ancestor, commit) {
    return ['merge-base', '--is-ancestor', ancestor, commit];
}
/** How many commits `to` has that `from` does not. */
function countArgs(from, to) {
    return ['rev-list', '--count', `${from}..${to}`];
}
function isShallowArgs() {
    return ['rev-parse', '--is-shallow-repository'];
}
/** The file's content as committed at `sha` (path relative to the repository root, "/"-separated). */
function showFileArgs(sha, repoPath) {
    return ['cat-file', 'blob', `${sha}:${repoPath}`];
}
function tagTargetArgs(tag) {
    return resolveCommitArgs(`refs/tags/${tag}`);
}
/**
 * An annotated tag; the message comes on stdin (`-F -`) so its text is never an argument, and `whitespace`
 * cleanup keeps lines starting with "#" (an issue number) that git's default would strip as comments.
 */
function createTagArgs(tag, sha) {
    return ['tag', '--annotate', '--cleanup=whitespace', '--file=-', '--end-of-options', tag, sha];
}
/** The tag as the remote has it: the tag object and, for an annotated tag, the commit it peels to. */
function lsRemoteTagArgs(remote, tag) {
    return ['ls-remote', '--tags', remote, `refs/tags/${tag}`, `refs/tags/${tag}^{}`];
}
function pushTagArgs(remote, tag) {
    return ['push', '--no-verify', '--porcelain', remote, `refs/tags/${tag}:refs/tags/${tag}`];
}
/** The tag message, parsed by the tests and by `git show`: `%(contents)` of an annotated tag. */
function tagMessageArgs(tag) {
    return ['for-each-ref', '--format=%(objecttype) %(contents)', `refs/tags/${tag}`];
}
/**
 * The release tag nearest to `sha` among those the name template can produce (`glob`), other than the one being
 * made. Lightweight tags count too: a project may have tagged earlier releases by hand.
 */
function previousTagArgs(sha, glob, exclude) {
    return ['describe', '--tags', '--abbrev=0', `--match=${glob}`, `--exclude=${exclude}`, sha];
}
/** Commit subjects in `range` (`prev..sha`, or `sha` for the first release), newest first, at most `max`. */
function subjectsArgs(range, max) {
    return ['log', `--max-count=${max}`, '--format=%s', range, '--'];
}

;// CONCATENATED MODULE: ./src/release/git.ts


const DEFAULT_TIMEOUT_MS = 60_000;
const KILL_GRACE_MS = 2000;
const MAX_OUTPUT = 16 * 1024 * 1024;
/** Credentials written into a remote URL (`https://user:token@host/...`) never reach a message. */
function scrubUrls(text) {
    return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/?#@\s]*@/gi, '$1***@');
}
function killGroup(pid, sig) {
    if (pid === undefined || pid <= 1 || pid === process.pid)
        return;
    try {
        process.kill(-pid, sig);
    }
    catch {
        /* already gone */
    }
}
/**
 * Runs git with an argument vector (no shell), in a process group of its own so a timeout or a cancellation
 * also ends the transport it started. Resolves for every exit; rejects only when git could not be started.
 * Terminal prompts are off: a fetch that needs a password fails at once instead of waiting for the timeout.
 */
function runGit(args, o) {
    if (o.signal?.aborted)
        return Promise.resolve({ code: null, stdout: '', stderr: '', timedOut: false, cancelled: true });
    return new Promise((resolve, reject) => {
        const child = (0,external_node_child_process_.spawn)('git', args, {
            cwd: o.cwd,
            // English messages whatever the runner's locale: some are recognised (a missing branch, no tags yet).
            env: { ...(o.env ?? process.env), GIT_TERMINAL_PROMPT: '0', GCM_INTERACTIVE: 'never', LC_ALL: 'C' },
            detached: true,
            stdio: [o.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        });
        const out = [];
        const err = [];
        let size = 0;
        const collect = (into) => (d) => {
            if (size >= MAX_OUTPUT)
                return;
            size += d.length;
            into.push(d);
        };
        child.stdout?.on('data', collect(out));
        child.stderr?.on('data', collect(err));
        if (o.stdin !== undefined && child.stdin) {
            child.stdin.on('error', () => undefined);
            child.stdin.end(o.stdin);
        }
        let why;
        let hardKill;
        const stop = (reason) => {
            if (why)
                return;
            why = reason;
            killGroup(child.pid, 'SIGTERM');
            hardKill = setTimeout(() => killGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS);
        };
        const timer = setTimeout(() => stop('timeout'), o.timeoutMs ?? DEFAULT_TIMEOUT_MS);
        const onAbort = () => stop('cancelled');
        o.signal?.addEventListener('abort', onAbort, { once: true });
        const done = () => {
            clearTimeout(timer);
            o.signal?.removeEventListener('abort', onAbort);
        };
        child.on('error', (e) => {
            done();
            clearTimeout(hardKill);
            reject(new errors/* DeployError */.sH('internal', `git could not be started: ${e.message}`, { cause: e }));
        });
        child.on('close', (code) => {
            done();
            // Whatever git started and left behind in its group goes with it when it was stopped.
            if (why)
                killGroup(child.pid, 'SIGKILL');
            clearTimeout(hardKill);
            resolve({
                code: why ? null : code,
                stdout: Buffer.concat(out).toString('utf8'),
                stderr: Buffer.concat(err).toString('utf8'),
                timedOut: why === 'timeout',
                cancelled: why === 'cancelled',
            });
        });
    });
}
/** The last lines git wrote to stderr, for a message: credentials in URLs masked, hints dropped. */
function gitComplaint(r) {
    const lines = scrubUrls(r.stderr)
        .split('\n')
        .map((l) => l.trimEnd())
        .filter((l) => l && !l.startsWith('hint:'));
    return lines.slice(-4).join(' / ') || `exit code ${r.code}`;
}
/** Runs git and returns stdout, or throws a DeployError of `errorClass` that says what failed and why. */
async function gitOutput(args, o) {
    const r = await runGit(args, o);
    if (r.cancelled)
        throw new errors/* DeployError */.sH('cancelled', `${o.what}: cancelled`);
    if (r.timedOut)
        throw new errors/* DeployError */.sH('timeout', `${o.what}: git ${args[0]} did not finish within ${Math.round((o.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000)}s`);
    if (r.code !== 0)
        throw new errors/* DeployError */.sH(o.errorClass ?? 'command-failed', `${o.what}: git ${args[0]} failed: ${gitComplaint(r)}`);
    return r.stdout;
}

// EXTERNAL MODULE: ./src/release/names.ts
var names = __webpack_require__(5365);
;// CONCATENATED MODULE: ./src/release/changelog.ts








const WHERE = 'release.changelog';
/**
 * Each entry carries a machine-readable marker, so a re-run of the same release recognises its entry whatever
 * the heading looks like after someone edited it. The tag is URI-encoded: a ref name may contain "-->".
 */
function entryMarker(tag, commit) {
    return `<!-- homelab-deploy release tag=${encodeURIComponent(tag)} commit=${commit} -->`;
}
const MARKER_RE = /^<!-- homelab-deploy release tag=(\S+) commit=([0-9a-f]{40}) -->$/gm;
/** The commit the file's entry for `tag` names, if it has one. */
function findEntry(text, tag) {
    const want = encodeURIComponent(tag);
    for (const m of text.matchAll(MARKER_RE))
        if (m[1] === want)
            return m[2];
    return undefined;
}
/** A commit subject as one list item: one line, and no "<" that could open HTML (or fake a marker). */
function item(subject) {
    // eslint-disable-next-line no-control-regex
    const controls = /[\x00-\x08\x0b-\x1f\x7f]/g;
    const line = subject.replace(controls, '').replace(/\s+/g, ' ').trim();
    return `- ${line.replace(/</g, '&lt;') || '(no subject)'}`;
}
function renderEntry(e) {
    const since = e.previousTag ? `changes since ${e.previousTag}` : 'first release';
    const run = e.runUrl ? ` · [deploy run](${e.runUrl})` : '';
    const items = e.subjects.map(item);
    if (e.total > e.subjects.length)
        items.push(`- … and ${e.total - e.subjects.length} earlier commits`);
    if (e.total === 0)
        items.push(`- no commits since ${e.previousTag ?? 'the previous release'}`);
    return [
        `## ${e.tag} (${e.date})`,
        '',
        entryMarker(e.tag, e.commit),
        `Commit \`${e.commit.slice(0, 12)}\`${run} · ${since}:`,
        '',
        ...items,
        '',
    ].join('\n');
}
/**
 * The file with the entry added: at the end (`bottom`), or before the first existing release heading (`top`,
 * newest first), keeping a title and introduction above it.
 */
function insertEntry(existing, entry, position) {
    if (existing.trim() === '')
        return entry;
    const text = existing.endsWith('\n') ? existing : existing + '\n';
    if (position === 'top') {
        const lines = text.split('\n');
        const first = lines.findIndex((l) => /^## /.test(l));
        if (first >= 0) {
            const before = lines.slice(0, first).join('\n');
            const after = lines.slice(first).join('\n');
            return `${before}${before ? '\n' : ''}${entry}\n${after}`;
        }
    }
    return `${text}${text.endsWith('\n\n') ? '' : '\n'}${entry}`;
}
/** The entry's facts from git: the previous release tag reachable from the commit and the subjects since. */
async function collectEntry(settings, run) {
    const cwd = repoRoot(run.dir);
    const git = { cwd, signal: run.signal };
    const described = await runGit(previousTagArgs(run.commit, run.tagGlob, run.tag), git);
    if (described.cancelled)
        throw new errors/* DeployError */.sH('cancelled', `${WHERE}: cancelled`);
    let previousTag = described.stdout.trim() || undefined;
    if (described.code !== 0) {
        if (!/no names found|no tags can describe|cannot describe/i.test(described.stderr))
            throw new errors/* DeployError */.sH('command-failed', `${WHERE}: git describe failed: ${gitComplaint(described)}`);
        previousTag = undefined;
        // With no earlier tag in reach, a shallow clone cannot tell a first release from history it lacks.
        const shallow = (await gitOutput(isShallowArgs(), { ...git, what: WHERE })).trim() === 'true';
        if (shallow)
            throw new errors/* DeployError */.sH('precondition', `${WHERE}: this clone is shallow and no earlier release tag (${run.tagGlob}) is in reach, so the commits since the last release are unknown: check out with fetch-depth: 0 (it also fetches the tags)`);
    }
    if (previousTag !== undefined)
        (0,names/* validateTagName */._R)(previousTag, `${WHERE}: previous release tag`);
    const range = previousTag ? `refs/tags/${previousTag}..${run.commit}` : run.commit;
    const subjects = (await gitOutput(subjectsArgs(range, settings.maxEntries), { ...git, what: WHERE }))
        .split('\n')
        .filter((l, i, all) => i < all.length - 1 || l !== '');
    const total = previousTag
        ? Number((await gitOutput(countArgs(`refs/tags/${previousTag}`, run.commit), { ...git, what: WHERE })).trim())
        : Number((await gitOutput(['rev-list', '--count', run.commit], { ...git, what: WHERE })).trim());
    return {
        tag: run.tag,
        commit: run.commit,
        releaseId: run.releaseId,
        date: run.date,
        runUrl: run.runUrl,
        previousTag,
        subjects: subjects.slice(0, settings.maxEntries),
        total,
    };
}
async function readExisting(file) {
    try {
        // A changelog that is a symlink is updated where it points, and stays a link.
        const target = await external_node_fs_.promises.realpath(file);
        const st = await external_node_fs_.promises.stat(target);
        if (!st.isFile())
            throw new errors/* DeployError */.sH('config', `${WHERE}.file: ${file} is not a regular file`);
        return { text: await external_node_fs_.promises.readFile(target, 'utf8'), mode: st.mode & 0o7777, target };
    }
    catch (err) {
        if (err.code !== 'ENOENT') {
            if (err instanceof errors/* DeployError */.sH)
                throw err;
            throw new errors/* DeployError */.sH('command-failed', `${WHERE}.file: reading ${file} failed: ${err.message}`);
        }
        const dir = external_node_path_.dirname(file);
        if (!external_node_fs_.existsSync(dir))
            throw new errors/* DeployError */.sH('config', `${WHERE}.file: the directory ${dir} does not exist; create it (the changelog file itself is created on the first release)`);
        return { text: '', mode: 0o644, target: file };
    }
}
/**
 * Adds the release to the changelog, once: a file that already has this tag's entry (a re-run) is left alone,
 * one whose entry for the tag names another commit is an error. The file is replaced atomically (temp file in the
 * same directory, synced, renamed), so an interrupted write leaves the old file whole. It is not committed: the
 * deployed commit is what it is, and a commit made here could not be pushed to a protected branch; the report
 * names the file for the workflow to commit or upload.
 */
async function appendChangelog(settings, run) {
    (0,names/* validateTagName */._R)(run.tag, `${WHERE}: tag`);
    (0,names/* validateSha */.xt)(run.commit, 'the released commit');
    const file = settings.file;
    const before = await readExisting(file);
    const recorded = findEntry(before.text, run.tag);
    if (recorded === run.commit)
        return { file, written: false, commits: 0 };
    if (recorded)
        throw new errors/* DeployError */.sH('precondition', `${WHERE}: ${file} already has an entry for ${run.tag} on commit ${recorded}, not on ${run.commit}; a release entry is never rewritten`);
    const entry = await collectEntry(settings, run);
    const next = insertEntry(before.text, renderEntry(entry), settings.position);
    try {
        await (0,atomic_file/* writeFileAtomic */.Zf)(before.target, next, before.mode);
    }
    catch (err) {
        throw new errors/* DeployError */.sH('command-failed', `${WHERE}: writing ${file} failed (${err.code ?? err.message}); the file is unchanged`, { cause: err });
    }
    return { file, written: true, previousTag: entry.previousTag, commits: entry.total };
}

;// CONCATENATED MODULE: ./src/release/tag.ts





function tagConflict(tag, existing, wanted, where) {
    return new errors/* DeployError */.sH('precondition', `release tag ${tag} already exists${where ? ` ${where}` : ''} on commit ${existing}, not on the deployed commit ${wanted}: bump the version (or change release.tag.name) and deploy again; an existing release tag is never moved`);
}
/** The identity tags are made with on a runner that has none configured (git would refuse to tag). */
const FALLBACK_TAGGER = { name: 'homelab-deploy', email: 'homelab-deploy@localhost' };
/** `git tag -a` on the runner, then `git push <remote> refs/tags/<name>` when pushing is on. */
class GitTagPublisher {
    via = 'git';
    cwd;
    o;
    constructor(o) {
        (0,names/* validateRemoteName */.i5)(o.remote, 'release.tag.remote');
        this.o = o;
        this.cwd = repoRoot(o.dir);
    }
    git(extra = {}) {
        return { cwd: this.cwd, signal: this.o.signal, env: this.o.env, timeoutMs: this.o.timeoutMs, ...extra };
    }
    async local(tag) {
        const r = await runGit(tagTargetArgs(tag), this.git());
        const sha = r.stdout.trim();
        return r.code === 0 && /^[0-9a-f]{40}$/.test(sha) ? sha : undefined;
    }
    /** The commit the remote's tag peels to; undefined when the remote has no such tag. */
    async remote(tag) {
        const out = await gitOutput(lsRemoteTagArgs(this.o.remote, tag), {
            ...this.git(),
            what: `release tag: reading ${tag} on ${this.o.remote}`,
            errorClass: 'unreachable',
        });
        const refs = new Map(out
            .split('\n')
            .filter(Boolean)
            .map((l) => {
            const [sha, name] = l.split('\t');
            return [name, sha];
        }));
        return refs.get(`refs/tags/${tag}^{}`) ?? refs.get(`refs/tags/${tag}`);
    }
    async lookup(tag) {
        (0,names/* validateTagName */._R)(tag, 'release.tag.name');
        const local = await this.local(tag);
        const remote = this.o.push ? await this.remote(tag) : undefined;
        if (local && remote && local !== remote)
            throw new errors/* DeployError */.sH('precondition', `release tag ${tag} is on commit ${local} in this clone but on ${remote} on ${this.o.remote}: delete the stray local tag (git tag -d ${tag}) and run again`);
        return remote ?? local;
    }
    async identityEnv() {
        const env = { ...(this.o.env ?? process.env) };
        if (env.GIT_COMMITTER_NAME && env.GIT_COMMITTER_EMAIL)
            return env;
        const get = async (key) => (await runGit(['config', '--get', key], this.git())).stdout.trim() || undefined;
        const [name, email] = [await get('user.name'), await get('user.email')];
        if (!env.GIT_COMMITTER_NAME && !name)
            env.GIT_COMMITTER_NAME = FALLBACK_TAGGER.name;
        if (!env.GIT_COMMITTER_EMAIL && !email)
            env.GIT_COMMITTER_EMAIL = FALLBACK_TAGGER.email;
        return env;
    }
    async publish(tag, sha, message) {
        (0,names/* validateTagName */._R)(tag, 'release.tag.name');
        (0,names/* validateSha */.xt)(sha, 'the tagged commit');
        const { remote, push } = this.o;
        const onRemote = push ? await this.remote(tag) : undefined;
        if (onRemote && onRemote !== sha)
            throw tagConflict(tag, onRemote, sha, `on ${remote}`);
        const local = await this.local(tag);
        if (local && local !== sha)
            throw tagConflict(tag, local, sha, 'in this clone');
        let created = false;
        if (!local && !onRemote) {
            await gitOutput(createTagArgs(tag, sha), {
                ...this.git({ stdin: message, env: await this.identityEnv() }),
                what: `release tag: git tag ${tag}`,
            });
            created = true;
        }
        if (!push)
            return { created, existing: created ? undefined : local };
        if (onRemote)
            return { created: false, existing: onRemote, pushed: true };
        const r = await runGit(pushTagArgs(remote, tag), this.git());
        if (r.cancelled)
            throw new errors/* DeployError */.sH('cancelled', `release tag: pushing ${tag}: cancelled`);
        if (r.code !== 0) {
            // Another run may have pushed the same release tag in between: fine when it names the same commit.
            const now = r.timedOut ? undefined : await this.remote(tag).catch(() => undefined);
            if (now === sha)
                return { created, existing: created ? undefined : sha, pushed: true };
            if (now)
                throw tagConflict(tag, now, sha, `on ${remote}`);
            throw new errors/* DeployError */.sH(r.timedOut ? 'timeout' : 'unreachable', `release tag ${tag} was made in this clone but pushing it to ${remote} failed${r.timedOut ? ` (no answer within ${Math.round(this.o.timeoutMs / 1000)}s)` : `: ${gitComplaint(r)}`}; push it with git push ${remote} refs/tags/${tag}, or run the release again`);
        }
        return { created, existing: created ? undefined : sha, pushed: true };
    }
}

// EXTERNAL MODULE: ./src/release/tag-templates.ts
var tag_templates = __webpack_require__(7119);
;// CONCATENATED MODULE: ./src/release/version.ts






const version_WHERE = 'release.tag.version_from';
/** The version a file's text declares: package.json's "version", or a VERSION file's first non-empty line. */
function parseVersionFile(text, format, file) {
    let version;
    if (format === 'json') {
        let doc;
        try {
            doc = JSON.parse(text);
        }
        catch (err) {
            throw new errors/* DeployError */.sH('config', `${version_WHERE}: ${file} is not valid JSON: ${err.message}`);
        }
        version = doc !== null && typeof doc === 'object' ? doc.version : undefined;
        if (typeof version !== 'string')
            throw new errors/* DeployError */.sH('config', `${version_WHERE}: ${file} has no "version" string (found ${version === undefined ? 'none' : JSON.stringify(version)})`);
    }
    else {
        version = text
            .replace(/^\uFEFF/, '')
            .split(/\r?\n/)
            .map((l) => l.trim())
            .find(Boolean);
        if (version === undefined)
            throw new errors/* DeployError */.sH('config', `${version_WHERE}: ${file} is empty`);
    }
    const why = (0,names/* versionProblem */.Ec)(version);
    if (why)
        throw new errors/* DeployError */.sH('config', `${version_WHERE}: ${file}: ${why}`);
    return version;
}
/**
 * The release's version. An explicit value wins over the file (a hotfix can be tagged without editing
 * package.json); the file is read as committed at the deployed commit, never from the working tree, so the tag
 * names the version of what runs.
 */
async function resolveVersion(source, run) {
    if (run.explicit !== undefined && run.explicit !== '') {
        const why = (0,names/* versionProblem */.Ec)(run.explicit);
        if (why)
            throw new errors/* DeployError */.sH('config', `release version (--release-version / release-version input): ${why}`);
        return { version: run.explicit, from: 'the release-version input' };
    }
    if (source.kind === 'input')
        throw new errors/* DeployError */.sH('config', `${version_WHERE} is "input" but no version was given: pass --release-version (CLI) or the release-version input (action)`);
    const root = repoRoot(run.dir);
    const rel = external_node_path_.relative(root, source.path).split(external_node_path_.sep).join('/');
    if (rel.startsWith('../') || rel === '..' || external_node_path_.isAbsolute(rel))
        throw new errors/* DeployError */.sH('config', `${version_WHERE}: ${source.as} is outside the repository ${root}`);
    const r = await runGit(showFileArgs(run.commit, rel), { cwd: root, signal: run.signal });
    if (r.cancelled)
        throw new errors/* DeployError */.sH('cancelled', `${version_WHERE}: cancelled`);
    if (r.code !== 0)
        throw new errors/* DeployError */.sH('config', `${version_WHERE}: ${rel} is not in commit ${run.commit.slice(0, 12)} (${gitComplaint(r)}); commit it, or give the version explicitly`);
    return {
        version: parseVersionFile(r.stdout, source.format, `${rel} at ${run.commit.slice(0, 12)}`),
        from: `${rel} at ${run.commit.slice(0, 12)}`,
    };
}

;// CONCATENATED MODULE: ./src/release/steps.ts








function utcDate(d) {
    return d.toISOString().slice(0, 10);
}
/** Whether this run must pass the up-to-date check: it deploys a stage (one of `sync.stages` when listed). */
function syncApplies(settings, deployedStages) {
    if (!settings.sync)
        return false;
    const wanted = settings.sync.stages;
    return deployedStages.some((s) => wanted.length === 0 || wanted.includes(s));
}
/** The CLI's publisher: git on the runner, pushing to the configured remote. */
function gitTagPublisher(settings, run) {
    const t = settings.tag;
    if (!t)
        return undefined;
    return new GitTagPublisher({
        dir: run.dir,
        push: t.push,
        remote: t.remote,
        timeoutMs: t.timeoutMs,
        signal: run.signal,
        env: run.env,
    });
}
/**
 * Works out the version, tag name and message, and refuses (class `precondition`) a release whose tag already
 * names another commit, all before staging: a tag that cannot be made should stop the run while production is
 * untouched, not after it changed. The changelog's directory must exist for the same reason.
 */
async function prepareRelease(settings, run, publisher) {
    (0,names/* validateSha */.xt)(run.commit, 'the commit to release');
    const date = utcDate(run.now ?? new Date());
    const prepared = { settings, run, date };
    if (settings.tag) {
        const { version, from } = await resolveVersion(settings.tag.version, {
            dir: run.dir,
            commit: run.commit,
            explicit: run.explicitVersion,
            signal: run.signal,
        });
        const values = { ...run, version, date };
        const name = (0,tag_templates/* renderTagName */.ol)(settings.tag.name, values);
        const message = (0,tag_templates/* renderTagMessage */.a5)(settings.tag.message, { ...values, tag: name });
        prepared.tag = { name, version, versionFrom: from, message };
        const existing = publisher?.lookup ? await publisher.lookup(name) : undefined;
        if (existing && existing !== run.commit)
            throw tagConflict(name, existing, run.commit);
    }
    if (settings.changelog) {
        const dir = external_node_path_.dirname(settings.changelog.file);
        if (!external_node_fs_.existsSync(dir))
            throw new errors/* DeployError */.sH('config', `release.changelog.file: the directory ${dir} does not exist; create it (the file itself is created on the first release)`);
    }
    return prepared;
}
/**
 * Why the release steps do not run after this run, or undefined when they do: the release stage must have run
 * and passed, and the deploy must have kept it (success, or partial_success where a later stage failed).
 */
function releaseSkipReason(settings, status, phases) {
    const stage = phases.find((p) => p.name === settings.onStage);
    if (!stage)
        return `stage ${settings.onStage} was not part of this run`;
    if (stage.status !== 'ok')
        return `stage ${settings.onStage} did not succeed (${stage.status})`;
    if (status !== 'success' && status !== 'partial_success')
        return `the deploy ended ${status}, so ${settings.onStage} may not run this release`;
    return undefined;
}
function info(err, redact) {
    const e = (0,errors/* toDeployError */.pH)(err);
    return { class: e.errorClass, message: redact(e.message) };
}
/**
 * Tags the deployed commit, then adds the changelog entry; never throws. A failure is reported with its class
 * (status `failed`) and changes nothing about the deploy. The changelog follows the tag, not the other way: an
 * entry must not announce a release whose tag could not be made.
 */
async function runReleaseSteps(prepared, publisher, opts = {}) {
    const started = Date.now();
    const redact = opts.redact ?? ((t) => t);
    const { settings, run } = prepared;
    const report = { status: 'ok', durationMs: 0 };
    const t = prepared.tag;
    if (t) {
        report.tag = {
            name: t.name,
            version: t.version,
            commit: run.commit,
            via: publisher?.via ?? 'git',
            ok: false,
            created: false,
        };
        try {
            if (!publisher)
                throw new errors/* DeployError */.sH('internal', 'no way to publish the release tag was set up');
            const res = await publisher.publish(t.name, run.commit, t.message);
            Object.assign(report.tag, { ok: true, created: res.created, pushed: res.pushed });
        }
        catch (err) {
            report.tag.error = info(err, redact);
            report.status = 'failed';
        }
    }
    if (settings.changelog && t) {
        const file = settings.changelog.file;
        if (report.status === 'failed') {
            report.changelog = {
                file,
                ok: false,
                written: false,
                commits: 0,
                error: { class: 'precondition', message: `not written: the release tag ${t.name} was not made` },
            };
        }
        else {
            try {
                const res = await appendChangelog(settings.changelog, {
                    dir: run.dir,
                    tag: t.name,
                    commit: run.commit,
                    releaseId: run.releaseId,
                    date: prepared.date,
                    runUrl: run.runUrl,
                    tagGlob: (0,tag_templates/* tagGlob */.ZM)(settings.tag?.name ?? t.name),
                    signal: run.signal,
                });
                report.changelog = { ...res, ok: true };
            }
            catch (err) {
                report.changelog = { file, ok: false, written: false, commits: 0, error: info(err, redact) };
                report.status = 'failed';
            }
        }
    }
    report.durationMs = Date.now() - started;
    return report;
}

;// CONCATENATED MODULE: ./src/release/sync.ts





const sync_WHERE = 'release.sync.with';
const commits = (n) => `${n} commit${n === 1 ? '' : 's'}`;
/**
 * The refusal for a commit that does not contain the branch tip, or undefined when it does. A commit ahead of the
 * branch (a feature branch built on the current main) is up to date; one behind or diverged is not.
 */
function syncProblem(f, ref) {
    if (f.contains)
        return undefined;
    const seen = f.fetched ? '' : ` (${ref} as last fetched: release.sync.fetch is off)`;
    const count = `${f.shallow ? 'appears to be' : 'is'} ${commits(f.behind)} behind ${ref}${f.ahead > 0 ? ` and ${f.ahead} ahead (the two have diverged)` : ''}`;
    const shallow = f.shallow
        ? ' This clone is shallow, so the history linking the two may be missing: check out with fetch-depth: 0 (actions/checkout) or run git fetch --unshallow, and run again.'
        : '';
    return (`${sync_WHERE}: commit ${f.commit} does not contain the tip of ${ref} (${f.tip})${seen}: it ${count}. ` +
        `Bring it up to date: merge ${ref} into the branch (git merge ${ref}) or rebase onto it ` +
        `(git rebase ${ref}), push, and deploy the new commit.${shallow}`);
}
/**
 * Refuses (class `precondition`) a commit that does not contain the tip of `settings.remote/branch`, after
 * fetching that branch unless fetching is off. A failed fetch is `unreachable` (or `timeout`), never a verdict:
 * the check does not guess from a stale ref unless told to.
 */
async function checkUpToDate(settings, run) {
    (0,names/* validateSha */.xt)(run.commit, 'the commit to deploy');
    const cwd = repoRoot(run.dir);
    const ref = `${settings.remote}/${settings.branch}`;
    const rb = { remote: settings.remote, branch: settings.branch, text: ref };
    const git = { cwd, signal: run.signal, env: run.env };
    const remote = await runGit(remoteUrlArgs(settings.remote), git);
    if (remote.code !== 0 && !remote.cancelled)
        throw new errors/* DeployError */.sH('config', `${sync_WHERE}: the repository ${cwd} has no remote ${JSON.stringify(settings.remote)} (git remote -v lists those it has)`);
    if (settings.fetch) {
        const r = await runGit(fetchBranchArgs(rb), { ...git, timeoutMs: settings.fetchTimeoutMs });
        const offline = `, or set release.sync.fetch: false to check against ${ref} as last fetched`;
        if (r.cancelled)
            throw new errors/* DeployError */.sH('cancelled', `${sync_WHERE}: fetching ${ref}: cancelled`);
        if (r.timedOut)
            throw new errors/* DeployError */.sH('timeout', `${sync_WHERE}: git fetch ${settings.remote} ${settings.branch} did not finish within ${Math.round(settings.fetchTimeoutMs / 1000)}s; check the runner's network access to the remote${offline}`);
        if (r.code !== 0 && /couldn't find remote ref/i.test(r.stderr))
            throw new errors/* DeployError */.sH('config', `${sync_WHERE}: ${settings.remote} has no branch ${JSON.stringify(settings.branch)} (git fetch: ${gitComplaint(r)}); name a branch it has`);
        if (r.code !== 0)
            throw new errors/* DeployError */.sH('unreachable', `${sync_WHERE}: git fetch ${settings.remote} ${settings.branch} failed, so it is unknown whether the commit is up to date: ${gitComplaint(r)}. Check that the remote is reachable and the branch exists${offline}`);
    }
    const tipOut = await runGit(resolveCommitArgs(trackingRef(rb)), git);
    const tip = tipOut.stdout.trim();
    if (tipOut.code !== 0 || !/^[0-9a-f]{40}$/.test(tip))
        throw new errors/* DeployError */.sH('precondition', `${sync_WHERE}: ${ref} is not known in ${cwd}${settings.fetch ? '' : ' (release.sync.fetch is off: fetch it first, or turn fetching on)'}`);
    const anc = await runGit(isAncestorArgs(tip, run.commit), git);
    if (anc.code !== 0 && anc.code !== 1)
        throw new errors/* DeployError */.sH('internal', `${sync_WHERE}: git merge-base failed: ${gitComplaint(anc)}`);
    const contains = anc.code === 0;
    const count = async (from, to) => Number((await gitOutput(countArgs(from, to), { ...git, what: sync_WHERE })).trim());
    const facts = {
        commit: run.commit,
        tip,
        contains,
        behind: contains ? 0 : await count(run.commit, tip),
        ahead: await count(tip, run.commit),
        shallow: contains ? false : (await gitOutput(isShallowArgs(), { ...git, what: sync_WHERE })).trim() === 'true',
        fetched: settings.fetch,
    };
    const problem = syncProblem(facts, ref);
    if (problem)
        throw new errors/* DeployError */.sH('precondition', problem);
    return { with: ref, tip, commit: run.commit, ahead: facts.ahead, fetched: settings.fetch };
}

;// CONCATENATED MODULE: ./src/pipeline/release-steps.ts



/**
 * Before anything is deployed: the up-to-date check (a commit that lacks the tip of the branch is refused) and
 * the release worked out (its tag name, a tag on another commit refused). Needs no target; a failure aborts the
 * run with nothing changed.
 */
async function beforeRelease(state, plan, opts) {
    const { ctx } = state;
    const rel = ctx.config.release;
    if (!rel)
        return {};
    const deployed = plan.phases.filter((p) => p.kind === 'stage').map((p) => p.name);
    const run = {
        dir: ctx.config.dir,
        project: ctx.config.project,
        commit: ctx.release.commit,
        releaseId: ctx.release.id,
        ref: ctx.release.ref,
        runUrl: ctx.run.url,
        explicitVersion: opts.version,
        signal: ctx.signal,
        env: ctx.env,
    };
    const publisher = opts.publisher ?? gitTagPublisher(rel, run);
    const out = { publisher };
    if (syncApplies(rel, deployed) && rel.sync)
        out.sync = await checkUpToDate(rel.sync, run);
    if ((rel.tag || rel.changelog) && deployed.includes(rel.onStage))
        out.prepared = await prepareRelease(rel, run, publisher);
    return out;
}
/**
 * After the run: the tag and the changelog, when the release stage went live in this run. They never change the
 * run's status (production is live and passed its checks): a failure is reported and left to be redone.
 */
async function afterRelease(state, steps, status) {
    const { ctx } = state;
    const rel = ctx.config.release;
    if (!rel || (!steps.prepared && !steps.sync))
        return undefined;
    if (!steps.prepared)
        return { status: 'skipped', reason: 'no release stage in this run', sync: steps.sync, durationMs: 0 };
    const skip = ctx.signal.aborted ? 'the run was cancelled' : releaseSkipReason(rel, status, state.phases);
    const report = skip
        ? { status: 'skipped', reason: skip, durationMs: 0 }
        : await runReleaseSteps(steps.prepared, steps.publisher, { redact: (t) => ctx.redactor.redact(t) });
    if (report.tag?.ok && report.tag.created)
        record(state, 'release-tagged', ctx.config.project, `${report.tag.name} on ${report.tag.commit.slice(0, 12)} (${report.tag.via})`);
    if (report.changelog?.ok && report.changelog.written)
        record(state, 'changelog-written', ctx.config.project, report.changelog.file);
    if (report.status === 'failed')
        ctx.emit({
            type: 'log',
            level: 'warn',
            message: `release steps failed (the deploy stands): ${report.tag?.error?.message ?? report.changelog?.error?.message ?? 'see the report'}`,
        });
    return { ...report, sync: steps.sync };
}

;// CONCATENATED MODULE: ./src/pipeline/tests-record.ts

/** Where a stage's tests leave their record: the target they ran on, or the stage's first target for the runner. */
function testsRecordTarget(stage) {
    return stage.tests?.on && stage.tests.on !== 'runner' ? stage.tests.on : stage.targets[0];
}
/** Writes that this commit passed the stage's tests, where a later run's `--skip-tests` looks for it. */
async function recordTestsPassed(state, stage, report) {
    const { ctx } = state;
    const name = testsRecordTarget(stage);
    await state.targets
        .get(name)
        .appendLog({
        event: 'tests',
        stage: stage.name,
        result: 'passed',
        on: report.on,
        durationMs: report.durationMs,
        junit: report.junit,
    })
        .catch((err) => ctx.emit({
        type: 'log',
        level: 'warn',
        message: `${name}: the tests record was not written: ${ctx.errorInfo(err).message}`,
    }));
}
/**
 * `--skip-tests`: every stage of the run with tests must have a record that this very commit passed them on the
 * same target; a stage without one refuses the run before anything is deployed, unless forced (audited). Returns
 * the report each stage shows instead of running its tests.
 */
async function checkTestsRecords(state, plan, mode) {
    const { ctx } = state;
    const out = new Map();
    for (const p of plan.phases) {
        const stage = p.stage;
        if (p.kind !== 'stage' || !stage?.tests)
            continue;
        const on = testsRecordTarget(stage);
        const log = await state.targets
            .get(on)
            .readReleaseLog()
            .catch(() => '');
        const passed = log
            .split('\n')
            .map((l) => {
            try {
                return JSON.parse(l);
            }
            catch {
                return undefined;
            }
        })
            .filter((x) => x?.event === 'tests' &&
            x.result === 'passed' &&
            x.stage === stage.name &&
            x.commit === ctx.release.commit)
            .pop();
        if (!passed && mode !== 'force')
            throw new Stop('aborted', {
                class: 'precondition',
                message: `--skip-tests: commit ${ctx.release.commit.slice(0, 12)} has no successful tests record for stage ${stage.name} on ${on}; run the tests (drop --skip-tests), or skip them anyway with --skip-tests=force (audited)`,
                phase: stage.name,
            });
        if (!passed)
            record(state, 'tests-skipped', on, `stage ${stage.name}: tests skipped without a passing record (forced)`);
        out.set(stage.name, {
            on: stage.tests.on,
            ok: true,
            exitCode: 0,
            durationMs: 0,
            outputTail: passed
                ? `skipped: commit ${ctx.release.commit.slice(0, 12)} passed these tests on ${on} at ${passed.time}${passed.runUrl ? ` (${passed.runUrl})` : ''}`
                : 'skipped without a passing record (--skip-tests=force)',
            skipped: true,
        });
    }
    return out;
}

;// CONCATENATED MODULE: ./src/git/source.ts




/**
 * The files of `dir` exactly as committed at `commit`, read from git's object store rather than the working tree,
 * so what is deployed is what the SHA names even on a dirty checkout.
 */
function filesAtCommit(dir, commit) {
    const root = repoRoot(dir);
    const rel = external_node_path_.relative(root, dir).split(external_node_path_.sep).join('/');
    if (rel.startsWith('..'))
        throw new errors/* DeployError */.sH('config', `source ${dir} is outside the repository ${root}`);
    const listing = (0,external_node_child_process_.execFileSync)('git', ['ls-tree', '-r', '-z', '--full-tree', commit, '--', rel || '.'], {
        cwd: root,
        maxBuffer: 256 * 1024 * 1024,
    }).toString('utf8');
    const entries = listing
        .split('\0')
        .filter(Boolean)
        .map((line) => {
        const [meta, file] = line.split('\t');
        const [mode, type, sha] = meta.split(' ');
        return { mode, type, sha, file };
    })
        .filter((e) => e.type === 'blob' && e.mode !== '120000'); // symlinks and submodules are not deployed
    if (entries.length === 0) {
        throw new errors/* DeployError */.sH('config', `source "${rel || '.'}" has no files at commit ${commit.slice(0, 12)}`);
    }
    const batch = (0,external_node_child_process_.spawnSync)('git', ['cat-file', '--batch'], {
        cwd: root,
        input: entries.map((e) => e.sha).join('\n') + '\n',
        maxBuffer: 1024 * 1024 * 1024,
    });
    if (batch.status !== 0)
        throw new errors/* DeployError */.sH('config', `git cat-file failed: ${batch.stderr.toString()}`);
    const out = batch.stdout;
    let pos = 0;
    return entries.map((e) => {
        const nl = out.indexOf(0x0a, pos);
        const header = out.subarray(pos, nl).toString('utf8').split(' ');
        const size = Number(header[2]);
        const data = out.subarray(nl + 1, nl + 1 + size);
        pos = nl + 1 + size + 1;
        return {
            path: rel ? e.file.slice(rel.length + 1) : e.file,
            data: Buffer.from(data),
            mode: e.mode === '100755' ? 0o755 : 0o644,
        };
    });
}

// EXTERNAL MODULE: ./src/secrets/env-file.ts
var env_file = __webpack_require__(8061);
;// CONCATENATED MODULE: ./src/pipeline/phase-report.ts


/** Opens a phase's report and announces it. */
function startPhase(state, p) {
    const r = {
        name: p.name,
        kind: p.kind,
        status: 'ok',
        startedAt: new Date().toISOString(),
        durationMs: 0,
        hosts: [],
    };
    state.phases.push(r);
    state.lastPhase = p.name;
    state.ctx.emit({ type: 'phase-start', phase: p.name, hosts: p.hosts });
    return r;
}
function endPhase(state, r, t0, err) {
    r.durationMs = Date.now() - t0;
    if (err) {
        r.status = 'failed';
        r.error = err;
    }
    state.ctx.emit({ type: 'phase-end', phase: r.name, ok: !err, durationMs: r.durationMs, error: err });
}
/** One host's result in a single-attempt phase (pre-flight, secrets, snapshot), announced as it ends. */
function hostResult(state, phase, host, t0, res, err) {
    const { ctx } = state;
    const ok = !err && (res?.ok ?? true);
    const info = err ? ctx.errorInfo(err, { host, phase }) : undefined;
    const durationMs = Date.now() - t0;
    const r = {
        host,
        ok,
        durationMs,
        attempts: [{ attempt: 1, ok, durationMs, error: info }],
        steps: res?.steps ?? [],
        health: [],
        error: info,
    };
    for (const s of r.steps)
        ctx.emit({ type: 'host-step', phase, host, step: s });
    ctx.emit({ type: 'host-end', phase, host, ok, durationMs, error: info, attempt: 1 });
    return r;
}
/** The first failed host's error, saying how many others failed too; undefined when every host passed. */
function firstFailure(r) {
    const failed = r.hosts.filter((h) => !h.ok);
    if (failed.length === 0)
        return undefined;
    const info = failed[0].error ?? { class: 'internal', message: `${failed[0].host} failed`, phase: r.name };
    const n = failed.length;
    return n > 1 ? { ...info, message: `${info.message} (and ${n - 1} more host${n > 2 ? 's' : ''})` } : info;
}
/**
 * A phase of one step per host before anything is deployed (pre-flight, secrets, snapshot): each host's step runs
 * once, its error becomes that host's result, and any failure aborts the run, since nothing has changed yet.
 * `whenAllPassed` runs before the phase ends, for work that needs every host (adopting rollback points).
 */
async function abortingHostPhase(state, p, step, whenAllPassed) {
    const t0 = Date.now();
    const r = startPhase(state, p);
    r.hosts = await (0,concurrency/* mapLimit */.s)(p.hosts, state.ctx.config.parallel, async (name) => {
        const h0 = Date.now();
        try {
            const out = await step(name);
            const rep = hostResult(state, p.name, name, h0, out.res);
            if (out.detail)
                rep.detail = out.detail;
            return rep;
        }
        catch (err) {
            return hostResult(state, p.name, name, h0, undefined, err);
        }
    });
    const failed = firstFailure(r);
    if (!failed && whenAllPassed)
        await whenAllPassed();
    endPhase(state, r, t0, failed);
    if (failed)
        throw new Stop('aborted', failed);
}

;// CONCATENATED MODULE: ./src/pipeline/phases/preflight.ts







/** Longest pause between two tries to take locks another run holds; the jitter keeps waiting runs apart. */
const LOCK_POLL_MS = 5000;
/**
 * What the run needs before it talks to any target, and what can fail without changing one: secret values (and
 * every env file rendered from them), the files of the commit. A failure ends the run as aborted, reported as a
 * pre-flight failure.
 */
function prepareRun(state, plan, opts) {
    const { ctx } = state;
    const { config } = ctx;
    const envFiles = new Map();
    try {
        const writing = plan.phases.some((x) => x.kind === 'secrets' || x.kind === 'stage');
        if (config.secrets && writing) {
            const values = (0,env_file/* collectSecrets */.qb)(config.secrets.keys, ctx.env);
            for (const [k, v] of Object.entries(values))
                ctx.redactor.add(v, k);
            for (const label of ctx.redactor.shortLabels)
                ctx.emit({
                    type: 'log',
                    level: 'warn',
                    message: `secret ${label} is shorter than 4 characters: it is masked only where it stands as a whole word`,
                });
            // Every SSH target the run may write to: those of the secrets phase, and a fleet's, which write their own.
            for (const name of plan.hosts) {
                const host = config.hosts[name];
                if (host)
                    envFiles.set(name, (0,env_file/* renderEnvFile */.mJ)(values, host.envDialect));
            }
        }
        else if (config.secrets) {
            // A later job (verify, say) writes no env file, but whatever values it has must still never be printed.
            for (const k of config.secrets.keys)
                if (ctx.env[k])
                    ctx.redactor.add(ctx.env[k], k);
        }
        if (plan.phases.some((x) => x.kind === 'stage'))
            ctx.files = opts.files ?? filesAtCommit(config.source, ctx.release.commit);
    }
    catch (err) {
        const t0 = Date.now();
        const info = ctx.errorInfo(err, { phase: 'preflight' });
        endPhase(state, startPhase(state, { name: 'preflight', kind: 'preflight', hosts: [], steps: [] }), t0, info);
        throw new Stop('aborted', info);
    }
    return { envFiles };
}
/**
 * Pre-flight of every target that is checked up front: reachability, runtime, disk and lock. Locks are taken last
 * on each target, and kept alive from that moment.
 */
async function runPreflight(state, p, plan, heartbeats) {
    const t0 = Date.now();
    const r = startPhase(state, p);
    r.hosts = p.hosts.length ? await acquireAll(state, p, heartbeats) : [];
    const failed = firstFailure(r);
    if (!failed)
        await adoptRecordedRollbackPoints(state, plan);
    endPhase(state, r, t0, failed);
    if (failed)
        throw new Stop('aborted', failed);
}
/**
 * Pre-flight of every target, taking their locks without deadlock when runs start together: the targets are
 * taken in one global order (by name), the first of them alone, as a gate (two runs over the same targets meet
 * there, and the one that loses has touched nothing else), then the rest at once. When another run holds any of
 * them, every lock this try took is given back before waiting, so no run ever waits while holding a lock
 * another waiting run needs. Without lock.wait the run then aborts, having changed nothing.
 */
async function acquireAll(state, p, heartbeats) {
    const { ctx } = state;
    const deadline = Date.now() + ctx.config.lock.waitMs;
    const ordered = [...p.hosts].sort();
    let waitedMs = 0;
    for (;;) {
        const [gate, ...rest] = ordered;
        const reports = new Map();
        const gateReport = await preflightOne(state, p.name, gate, waitedMs, heartbeats);
        reports.set(gate, gateReport);
        // Only a gate held by another run stops the others from being tried; any other failure is reported with theirs.
        if (gateReport.error?.class !== 'lock-held')
            for (const [i, rep] of (await (0,concurrency/* mapLimit */.s)(rest, ctx.config.parallel, (n) => preflightOne(state, p.name, n, waitedMs, heartbeats))).entries())
                reports.set(rest[i], rep);
        const failed = [...reports.values()].filter((x) => !x.ok);
        const lockHeld = failed.length > 0 && failed.every((x) => x.error?.class === 'lock-held');
        if (failed.length === 0 || !lockHeld || Date.now() >= deadline || ctx.signal.aborted)
            return ordered.map((n) => reports.get(n) ?? notTried(state, p, n, gate));
        // Give back what this try took, then wait for the holder.
        await (0,concurrency/* mapLimit */.s)([...reports.values()].filter((x) => x.ok), ctx.config.parallel, async (x) => {
            const h = targetRun(state, x.host);
            heartbeats.stop(x.host);
            if (await h.target.releaseLock().catch(() => false))
                record(state, 'lock-released', x.host);
            h.locked = false;
        });
        const pause = Math.min(LOCK_POLL_MS * (0.5 + Math.random()), Math.max(0, deadline - Date.now()));
        ctx.emit({
            type: 'log',
            level: 'info',
            message: `${failed[0].error?.message}; waiting (up to ${Math.round((deadline - Date.now()) / 1000)}s more)`,
        });
        await (0,duration/* sleep */.yy)(pause, ctx.signal);
        waitedMs += pause;
    }
}
/** One target's pre-flight and lock; its result, with the lock kept alive from the moment it is taken. */
async function preflightOne(state, phase, name, waitedMs, heartbeats) {
    const h0 = Date.now();
    const h = targetRun(state, name);
    h.attempted = true;
    try {
        const st = await h.target.preflight(phase);
        h.locked = true;
        heartbeats.start(h.target, () => !!h.idle);
        h.before = st.current;
        h.startCurrent = st.current;
        h.onNew = st.onNew;
        h.startedOnNew = st.onNew;
        if (st.onNew && st.current !== null)
            h.newVersion = st.current;
        h.prepared = st.prepared;
        if (st.lock !== 'ours' && st.lock !== 'none')
            record(state, st.lock === 'taken-over' ? 'lock-taken-over' : 'lock-acquired', name);
        const rep = hostResult(state, phase, name, h0, st.steps);
        rep.detail = { current: st.current, ...st.detail, lock: st.lock, lockWaitMs: waitedMs };
        return rep;
    }
    catch (err) {
        return hostResult(state, phase, name, h0, undefined, err);
    }
}
function notTried(state, p, name, gate) {
    return hostResult(state, p.name, name, Date.now(), undefined, new errors/* DeployError */.sH('lock-held', `not checked: ${gate} (locks are taken in name order, ${gate} first) is locked by another run`, { host: name }));
}
/**
 * A target already on this release when the run starts was deployed by an earlier job of the same workflow (or
 * an earlier try). Its rollback target is the one that job recorded, not the release it runs now; a target
 * without such a record cannot be rolled back by this run, and says so if asked to.
 */
async function adoptRecordedRollbackPoints(state, plan) {
    const snapshotHosts = new Set(plan.phases.find((x) => x.kind === 'snapshot')?.hosts ?? []);
    const onNew = [...state.runs.values()].filter((h) => h.onNew && !snapshotHosts.has(h.target.name));
    await (0,concurrency/* mapLimit */.s)(onNew, state.ctx.config.parallel, async (h) => {
        const point = await h.target.readRollbackPoint().catch(() => undefined);
        if (point) {
            h.before = point.previous;
            h.infraSnapshot = point.infraSnapshot;
        }
        else
            h.noRollbackPoint = true;
    });
}

// EXTERNAL MODULE: ./src/plan/waves.ts
var plan_waves = __webpack_require__(8929);
;// CONCATENATED MODULE: ./src/pipeline/health-gate.ts


/** A target's checks failed; the reports travel with the error so the phase can still show every check. */
class HealthFailed extends errors/* DeployError */.sH {
    health;
    constructor(host, health) {
        const bad = health.filter((x) => !x.ok);
        super('health-failed', `${host}: ${bad.map((b) => `${b.check}: ${b.lastError}`).join('; ')}`, { host });
        this.health = health;
    }
}
/**
 * Runs a target's checks for a phase, announces each result, and throws HealthFailed when any failed. Errors
 * reaching the checks themselves (a lost connection) are thrown as they are, with their own class.
 */
async function requireHealthy(ctx, subject, checks, phase) {
    const health = await runHealthChecks(ctx, subject, checks);
    for (const x of health)
        ctx.emit({ type: 'host-health', phase, host: subject.name, health: x });
    if (health.some((x) => !x.ok))
        throw new HealthFailed(subject.name, health);
    return health;
}

;// CONCATENATED MODULE: ./src/pipeline/rollback.ts




/** Kept from the cancellation budget for what comes after rollbacks: env files and locks. */
const RESERVE_FOR_LOCKS_MS = 1500;
/**
 * Returns targets to their rollback point: the infrastructure snapshot first where one is configured, then the
 * release, and a health check of the old release. Results go on the target run and into the phase report; a
 * failed rollback is recorded (in the report and on the target, for `status`), never thrown.
 */
async function rollbackHosts(state, names, phaseName, phase) {
    const { ctx } = state;
    const targets = names
        .map((n) => state.runs.get(n))
        .filter((h) => !!h && (h.touched || h.onNew));
    if (state.noRollback)
        return leaveInPlace(state, targets, phaseName, phase);
    await (0,concurrency/* mapLimit */.s)(targets, ctx.config.parallel, async (h) => {
        const r = await rollbackOne(state, h, phaseName);
        h.rollback = r;
        if (r.ok) {
            h.onNew = h.before !== null && h.before === h.newVersion;
            h.touched = false;
        }
        else {
            state.rollbackFailed = true;
            if (!r.pending && !h.lockLost)
                await markForHuman(state, h, r);
        }
        record(state, 'rollback', h.target.name, `${r.ok ? 'to' : 'FAILED, to'} ${h.before ?? '(none: stack stopped)'}`);
        ctx.emit({ type: 'rollback', phase: phaseName, host: h.target.name, ok: r.ok, to: r.to, error: r.error });
        const hr = phase.hosts.find((x) => x.host === h.target.name);
        if (hr)
            hr.rollback = r;
        else
            phase.hosts.push({
                host: h.target.name,
                ok: r.ok,
                durationMs: r.durationMs,
                attempts: [],
                steps: [],
                health: [],
                rollback: r,
            });
    });
    markRolledBackStages(state, targets);
}
/**
 * rollback-on-failure: false. Nothing is rolled back; each target that would have been says so, loudly, in the
 * report and the log, with what it runs now.
 */
function leaveInPlace(state, targets, phaseName, phase) {
    const { ctx } = state;
    for (const h of targets) {
        const r = {
            ok: false,
            skipped: true,
            to: h.before,
            durationMs: 0,
            error: {
                class: 'precondition',
                message: `not rolled back (rollback-on-failure is false): ${h.target.name} is left on the failed release; roll back by hand to ${h.before ?? 'nothing'}`,
                host: h.target.name,
                phase: phaseName,
            },
        };
        h.rollback = r;
        record(state, 'rollback', h.target.name, `NOT rolled back (rollback-on-failure: false); would return to ${h.before ?? '(none)'}`);
        ctx.emit({ type: 'log', level: 'warn', message: `⚠ NOT ROLLED BACK: ${r.error?.message}` });
        const hr = phase.hosts.find((x) => x.host === h.target.name);
        if (hr)
            hr.rollback = r;
    }
}
/** A failed rollback leaves a record on the target that `status` shows until a later deploy or rollback. */
async function markForHuman(state, h, r) {
    const { ctx } = state;
    await h.target
        .markNeedsAttention({
        time: new Date().toISOString(),
        reason: 'rollback-failed',
        release: ctx.release.id,
        rollbackTo: h.before,
        error: r.error?.message,
        runId: ctx.run.id,
        runUrl: ctx.run.url,
    }, { timeoutMs: cleanupTimeout(state, 15_000, RESERVE_FOR_LOCKS_MS) })
        .then(() => record(state, 'needs-attention', h.target.name, r.error?.message), () => undefined);
}
async function rollbackOne(state, h, phaseName) {
    const { ctx } = state;
    const t0 = Date.now();
    const stage = h.stage ?? phaseName;
    const r = { ok: false, to: h.before, durationMs: 0 };
    const name = h.target.name;
    try {
        if (h.lockLost)
            throw new errors/* DeployError */.sH('lock-held', `not rolled back: the deploy lock on ${name} now belongs to another run or an operator, who decides what it runs`, { host: name });
        if (h.noRollbackPoint)
            throw new errors/* DeployError */.sH('precondition', `no rollback point is recorded on ${name} for release ${ctx.release.id} (it was deployed before this pipeline recorded one); roll back by deploying the release you want`, { host: name });
        const cancelled = state.cancelDeadline !== undefined;
        const out = await h.target.rollback({
            stage,
            to: h.before,
            infraSnapshot: h.infraSnapshot,
            handOverWaitMs: cancelled ? cleanupTimeout(state, 60_000, RESERVE_FOR_LOCKS_MS) : undefined,
        });
        if (out.infraSnapshot)
            r.infraSnapshot = out.infraSnapshot;
        if (out.handedOver) {
            // Under cancellation the rollback runs on the target and releases the lock itself when it ends.
            h.lockHandedOver = true;
            r.durationMs = Date.now() - t0;
            if (out.ok)
                return { ...r, ok: true, unverified: true };
            const message = out.pending
                ? `rollback to ${h.before ?? '(none)'} is still running on the host after the run was cancelled (log: ${out.logFile}); it releases the deploy lock when it ends`
                : `rollback to ${h.before ?? '(none)'} failed on the host: ${(out.failed?.output ?? '').trim().slice(-300)}`;
            return {
                ...r,
                pending: out.pending,
                error: ctx.errorInfo(new errors/* DeployError */.sH(out.pending ? 'cancelled' : 'command-failed', message, { host: name })),
            };
        }
        if (!out.ok)
            throw new errors/* DeployError */.sH('command-failed', `rollback step "${out.failed?.name}" failed: ${(out.failed?.output ?? '').trim().slice(-300)}`, { host: name });
        const checks = ctx.config.stages.find((s) => s.name === h.stage)?.health ?? [];
        if (h.before && checks.length) {
            // A rollback is done when the old release answers, not when its stack was started.
            const bad = (await runHealthChecks(ctx, h.target.healthSubject(stage, h.before), checks)).filter((x) => !x.ok);
            // The run was cancelled while the old release was being checked: it runs again, unchecked, as a rollback
            // handed over to the host would.
            if (bad.length && ctx.signal.aborted) {
                r.durationMs = Date.now() - t0;
                return { ...r, ok: true, unverified: true };
            }
            if (bad.length)
                throw new errors/* DeployError */.sH('health-failed', `after rollback to ${h.before}: ${bad.map((b) => `${b.check}: ${b.lastError}`).join('; ')}`, { host: name });
        }
        r.ok = true;
    }
    catch (err) {
        r.error = ctx.errorInfo(err, { host: name, phase: phaseName });
    }
    r.durationMs = Date.now() - t0;
    return r;
}
/** A stage whose targets were all rolled back by a later failure did not stay deployed: its phase says so. */
function markRolledBackStages(state, rolledBack) {
    const back = new Set(rolledBack.filter((h) => h.rollback?.ok).map((h) => h.target.name));
    for (const p of state.phases) {
        if (p.kind !== 'stage' || p.status !== 'ok' || p.hosts.length === 0)
            continue;
        if (p.hosts.every((x) => back.has(x.host)))
            p.status = 'rolled_back';
    }
}

;// CONCATENATED MODULE: ./src/pipeline/retry.ts
/** Delay before attempt `next` (2-based): delay × factor^(next-2), capped, ± jitter so hosts do not retry in lockstep. */
function backoffDelay(policy, next, random = Math.random) {
    const base = Math.min(policy.maxDelayMs, policy.delayMs * policy.factor ** Math.max(0, next - 2));
    const spread = base * policy.jitter;
    return Math.max(0, Math.round(base - spread + random() * 2 * spread));
}

// EXTERNAL MODULE: ./node_modules/fast-xml-parser/src/xmlparser/XMLParser.js + 26 modules
var XMLParser = __webpack_require__(9658);
// EXTERNAL MODULE: ./node_modules/fast-xml-parser/src/fxp.js
var fxp = __webpack_require__(5824);
;// CONCATENATED MODULE: ./src/pipeline/junit.ts

const parser = new XMLParser/* default */.A({
    ignoreAttributes: false,
    attributeNamePrefix: '@',
    parseAttributeValue: false,
    parseTagValue: false,
    ignoreDeclaration: true,
    ignorePiTags: true,
    // Reports can be megabytes of test output; only the structure is read.
    stopNodes: ['*.system-out', '*.system-err', '*.failure', '*.error', '*.skipped'],
    isArray: (name) => name === 'testsuite' || name === 'testcase',
});
const ZERO = { tests: 0, failures: 0, errors: 0, skipped: 0 };
const add = (a, b) => ({
    tests: a.tests + b.tests,
    failures: a.failures + b.failures,
    errors: a.errors + b.errors,
    skipped: a.skipped + b.skipped,
});
/** A count attribute as a number; undefined when absent or not a count (GitHub-style "N/A", empty). */
function count(el, name) {
    const v = el[`@${name}`];
    if (typeof v !== 'string' || !/^\s*\d+(\.0+)?\s*$/.test(v))
        return undefined;
    return Number(v);
}
/** An element's own totals, when it states them (`tests` at least; absent failures/errors/skipped mean 0). */
function stated(el) {
    const tests = count(el, 'tests');
    if (tests === undefined)
        return undefined;
    return {
        tests,
        failures: count(el, 'failures') ?? 0,
        errors: count(el, 'errors') ?? 0,
        skipped: (count(el, 'skipped') ?? 0) + (count(el, 'disabled') ?? 0),
    };
}
const children = (el, name) => (el[name] ?? []).map((c) => (typeof c === 'object' && c ? c : {}));
/**
 * A suite's totals: its own attributes when it has them (they already include any nested suites, so those are
 * not counted again), else the sum of its nested suites and its test cases.
 */
function suiteTotals(suite) {
    const own = stated(suite);
    if (own)
        return own;
    let sum = children(suite, 'testsuite').reduce((acc, s) => add(acc, suiteTotals(s)), ZERO);
    for (const tc of children(suite, 'testcase')) {
        sum = add(sum, {
            tests: 1,
            failures: 'failure' in tc ? 1 : 0,
            errors: 'error' in tc ? 1 : 0,
            skipped: 'skipped' in tc ? 1 : 0,
        });
    }
    return sum;
}
function fromDocument(doc) {
    const root = doc.testsuites;
    if (root !== undefined) {
        const el = typeof root === 'object' ? root : {};
        return stated(el) ?? children(el, 'testsuite').reduce((acc, s) => add(acc, suiteTotals(s)), ZERO);
    }
    const suites = children(doc, 'testsuite');
    if (!suites.length)
        return undefined;
    return suites.reduce((acc, s) => add(acc, suiteTotals(s)), ZERO);
}
/** The attributes of one opening tag, read by the XML parser (either quote, entities decoded). */
function attributesOf(name, rest) {
    const parsed = parser.parse(`<${name}${rest.replace(/\/\s*$/, '')}/>`);
    const raw = parsed[name];
    const el = Array.isArray(raw) ? raw[0] : raw;
    return typeof el === 'object' && el ? el : {};
}
/**
 * The <testsuite(s)> tags alone, as a test run on a host ships them back (see tests-runner.ts): no test cases,
 * and closing tags only if the host sent them. With closing tags the nesting is known, and a suite inside one
 * that stated its totals is not counted again; without them every suite is taken as a sibling, which is how
 * pytest, jest-junit and go-junit-report write their files.
 */
function fromTags(text) {
    const tags = [...text.matchAll(/<(\/?)(testsuites?)\b((?:[^>"']|"[^"]*"|'[^']*')*)>/g)];
    const nested = tags.some(([, closing]) => closing);
    // Per open <testsuite>: whether it, or a suite around it, has been counted.
    const covered = [];
    let total;
    for (const [, closing, name, rest] of tags) {
        if (closing) {
            if (name === 'testsuite')
                covered.pop();
            continue;
        }
        const own = stated(attributesOf(name, rest));
        if (name === 'testsuites') {
            if (own)
                return own;
            continue;
        }
        const inside = covered[covered.length - 1] ?? false;
        if (own && !inside)
            total = add(total ?? ZERO, own);
        if (nested && !rest.trimEnd().endsWith('/'))
            covered.push(inside || own !== undefined);
    }
    return total;
}
/**
 * Counts from a JUnit XML report (pytest, jest-junit, go-junit-report, Maven Surefire...): the <testsuites> totals
 * when present, else the outermost <testsuite> elements' totals, else the test cases themselves. Attributes may use
 * either quote. Undefined when the text holds no test suite at all.
 */
function parseJunit(xml) {
    let totals;
    if (fxp/* XMLValidator */.iI.validate(xml) === true) {
        try {
            totals = fromDocument(parser.parse(xml));
        }
        catch {
            totals = undefined;
        }
    }
    totals ??= fromTags(xml);
    if (!totals)
        return undefined;
    return { ...totals, passed: Math.max(0, totals.tests - totals.failures - totals.errors - totals.skipped) };
}

;// CONCATENATED MODULE: ./src/pipeline/tests-runner.ts






const TAIL = 4000;
const killedNote = (timeoutMs) => `\n[homelab-deploy] tests exceeded ${Math.round(timeoutMs / 1000)}s and were killed`;
/**
 * Runs a stage's test command on a target (an SSH host runs it in the release directory) or on the runner (in
 * the config file's directory, where a relative command and JUnit path are meant); its exit code gates the next
 * stage. A JUnit file left by an earlier run is deleted first, so stale results are never reported as this run's.
 * On a timeout the output so far is kept: it is what says where the tests hung.
 */
async function runTests(ctx, targets, tests, stage, stageTargets) {
    const started = Date.now();
    const target = targets.get(tests.on === 'runner' ? stageTargets[0] : tests.on);
    const subject = target.healthSubject(stage);
    // Values reach the shell quoted, whatever a host var or address contains.
    const command = (0,template/* renderShellTemplate */.Nz)(tests.run, subject.vars, `stages.${stage}.tests.run`);
    let r;
    if (tests.on === 'runner')
        r = await onRunner(ctx, tests, subject, command);
    else if (target.runTests)
        r = await target.runTests(command, { stage, timeoutMs: tests.timeoutMs, junit: tests.junit });
    else
        throw new errors/* DeployError */.sH('config', `stages.${stage}.tests.on: ${tests.on} is a ${target.kind} target, which cannot run tests itself; use "runner"`);
    let output = r.output + (r.timedOut ? killedNote(tests.timeoutMs) : '');
    if (r.junitMissing)
        output += `\n[homelab-deploy] the tests wrote no JUnit report at ${r.junitMissing}`;
    output = ctx.redactor.redact(output);
    return {
        on: tests.on,
        ok: r.exitCode === 0,
        exitCode: r.exitCode,
        durationMs: Date.now() - started,
        outputTail: output.length > TAIL ? '…' + output.slice(-TAIL) : output,
        junit: r.junitXml ? parseJunit(r.junitXml) : undefined,
    };
}
async function onRunner(ctx, tests, subject, command) {
    const cwd = ctx.config.dir;
    const junit = tests.junit ? external_node_path_.resolve(cwd, tests.junit) : undefined;
    if (junit)
        await external_node_fs_.promises.rm(junit, { force: true });
    const r = await runLocal(command, tests.timeoutMs, { ...ctx.env, ...subject.env }, ctx.signal, cwd);
    if (!junit)
        return r;
    const junitXml = await external_node_fs_.promises.readFile(junit, 'utf8').catch(() => undefined);
    return { ...r, junitXml, junitMissing: junitXml === undefined ? junit : undefined };
}
function runLocal(command, timeoutMs, env, signal, cwd) {
    return new Promise((resolve) => {
        const child = (0,external_node_child_process_.spawn)('/bin/sh', ['-c', command], {
            cwd,
            env,
            detached: true,
            stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        const add = (d) => {
            output += d.toString('utf8');
            if (output.length > 4 * TAIL)
                output = output.slice(-2 * TAIL);
        };
        child.stdout.on('data', add);
        child.stderr.on('data', add);
        const killGroup = () => {
            try {
                process.kill(-child.pid, 'SIGKILL');
            }
            catch {
                /* already gone */
            }
        };
        let timedOut = false;
        const timer = setTimeout(() => {
            timedOut = true;
            killGroup();
        }, timeoutMs);
        signal.addEventListener('abort', killGroup, { once: true });
        child.on('close', (code) => {
            clearTimeout(timer);
            signal.removeEventListener('abort', killGroup);
            // The note goes after everything the tests printed, so the tail shows where they hung and then why.
            resolve({ exitCode: timedOut ? null : code, output, timedOut });
        });
        child.on('error', (err) => {
            clearTimeout(timer);
            resolve({ exitCode: null, output: err.message });
        });
    });
}

;// CONCATENATED MODULE: ./src/pipeline/phases/stage.ts











/**
 * Deploys one stage (with its retry policy per host), runs its tests, and applies its failure rule. Returns
 * normally when the stage is live; throws Stop when the run must end; returns 'continue-degraded' when a
 * rollback-stage failure left earlier stages live (the run deploys nothing further but still verifies).
 */
async function runStage(state, p, stage) {
    const t0 = Date.now();
    const r = startPhase(state, p);
    r.hosts = await (0,concurrency/* mapLimit */.s)(stage.targets, stage.parallel, (name) => deployTarget(state, targetRun(state, name), stage));
    for (const hr of r.hosts)
        recordDeploy(state, hr);
    let failure = r.hosts.find((h) => !h.ok)?.error;
    if (!failure && stage.tests)
        failure = await gate(state, r, stage);
    if (failure) {
        const info = { ...failure, phase: stage.name };
        endPhase(state, r, t0, info);
        const scope = stage.onFailure === 'rollback-all' ? rollbackAllScope(state, stage) : stage.targets;
        await rollbackHosts(state, scope, stage.name, r);
        r.status = state.noRollback ? 'failed' : 'rolled_back';
        if (stage.onFailure === 'rollback-all')
            throw new Stop(statusAfterRollbackAll(state, stage), info);
        // rollback-stage: earlier stages stay live; deploy nothing further, but verify what is live.
        if (![...state.runs.values()].some((h) => h.onNew))
            throw new Stop('failed', info);
        return 'continue-degraded';
    }
    await (0,concurrency/* mapLimit */.s)(stage.targets, stage.parallel, async (name) => {
        const h = targetRun(state, name);
        await settle(h, stage, r);
        // Deployed and healthy: the final states need not ask it again unless a later failure rolls it back.
        h.settled = true;
    });
    endPhase(state, r, t0);
    return 'deployed';
}
/** An audit line for a target this run switched to the new release. */
function recordDeploy(state, hr) {
    if (hr.detail?.unchanged || !hr.detail?.switched)
        return;
    const n = hr.attempts.length;
    record(state, 'deploy', hr.host, `${state.ctx.release.id} (${n} attempt${n === 1 ? '' : 's'})`);
}
/** The stage's tests; any error running them (the host dropped, say) is a failed gate, never an escape. */
async function gate(state, r, stage) {
    const { ctx } = state;
    const tests = stage.tests;
    if (!tests)
        return undefined;
    let report;
    const skipped = state.skippedTests?.get(stage.name);
    try {
        report = skipped ?? (await runTests(ctx, state.targets, tests, stage.name, stage.targets));
        if (report.ok && !skipped)
            await recordTestsPassed(state, stage, report);
    }
    catch (err) {
        const info = ctx.errorInfo(err, {
            phase: stage.name,
            host: tests.on === 'runner' ? undefined : tests.on,
        });
        report = { on: tests.on, ok: false, exitCode: null, durationMs: 0, outputTail: info.message };
    }
    r.tests = report;
    ctx.emit({
        type: 'tests',
        phase: stage.name,
        on: report.on,
        ok: report.ok,
        exitCode: report.exitCode,
        durationMs: report.durationMs,
    });
    if (report.ok)
        return undefined;
    const last = report.outputTail.trim().split('\n').slice(-3).join(' | ');
    return {
        class: 'tests-failed',
        message: `tests on ${report.on} failed (exit ${report.exitCode ?? 'none'}): ${last}`,
        phase: stage.name,
        host: report.on === 'runner' ? undefined : report.on,
    };
}
/** A live stage's bookkeeping on each target: the release log line, pruning, old infrastructure snapshots. */
async function settle(h, stage, r) {
    const hr = r.hosts.find((x) => x.host === h.target.name);
    await h.target
        .settle({
        stage: stage.name,
        previous: h.before,
        unchanged: hr?.detail?.unchanged === true,
        durationMs: hr?.durationMs,
        infraSnapshot: h.infraSnapshot,
    })
        .catch(() => undefined);
}
/**
 * What rollback-all returns: the hosts of this stage and of the stages before it that run the new release, and
 * any host this run changed. Hosts of later stages that an earlier run already moved are left alone: this
 * failure says nothing about them (a staging failure on a re-run must not touch production).
 */
function rollbackAllScope(state, stage) {
    const order = state.ctx.config.stages.map((s) => s.name);
    const upTo = new Set(order.slice(0, order.indexOf(stage.name) + 1));
    return [...state.runs.values()]
        .filter((h) => h.touched || (h.onNew && h.stage !== undefined && upTo.has(h.stage)))
        .map((h) => h.target.name);
}
/**
 * The failure rules, derived from what actually happened: if a host of another stage that this run deployed
 * still runs the new release the outcome is a partial success; if hosts of stages that had succeeded were rolled
 * back it is `rolled_back`; otherwise `failed`.
 */
function statusAfterRollbackAll(state, failedStage) {
    const runs = [...state.runs.values()];
    const deployedHere = (h) => h.onNew && !h.startedOnNew && !h.rollback?.ok;
    if (runs.some((h) => h.stage !== failedStage.name && deployedHere(h)))
        return 'partial_success';
    return runs.some((h) => h.rollback?.ok && h.stage !== failedStage.name) ? 'rolled_back' : 'failed';
}
/** Deploys to one target with the stage's retry policy; health failures count as deploy failures of that attempt. */
async function deployTarget(state, h, stage) {
    const { ctx } = state;
    const t0 = Date.now();
    const attempts = [];
    const report = {
        host: h.target.name,
        ok: false,
        durationMs: 0,
        attempts,
        steps: [],
        health: [],
    };
    // Already current (a re-run, or a later job): deploying again would restart the stack for nothing, unless its
    // env file changed, which only a new `up` applies.
    if (h.startedOnNew && !ctx.force && !h.envWritten) {
        const health = await runHealthChecks(ctx, h.target.healthSubject(stage.name), stage.health).catch(() => undefined);
        if (health?.every((x) => x.ok)) {
            report.ok = true;
            report.health = health;
            report.detail = { unchanged: true };
            attempts.push({ attempt: 1, ok: true, durationMs: Date.now() - t0 });
            ctx.emit({
                type: 'log',
                level: 'info',
                message: `${h.target.name}: release ${ctx.release.id} is already current and healthy; not redeployed (use --force to redeploy)`,
            });
            report.durationMs = Date.now() - t0;
            return report;
        }
    }
    let delayBefore;
    for (let attempt = 1; attempt <= stage.retry.attempts; attempt++) {
        const a0 = Date.now();
        let err;
        try {
            const res = await h.target.deploy({
                stage: stage.name,
                previous: h.before,
                prepared: h.prepared,
                checkBeforeActivate: (subject) => requireHealthy(ctx, subject, stage.health, stage.name),
            });
            report.steps = res.steps;
            for (const s of res.steps)
                ctx.emit({ type: 'host-step', phase: stage.name, host: h.target.name, step: s });
            if (res.health)
                report.health = res.health;
            if (res.switched) {
                report.detail = { ...report.detail, switched: true };
                h.touched = true;
                h.onNew = true;
                h.prepared = true;
                if (res.version)
                    h.newVersion = res.version;
            }
            if (!res.ok) {
                const f = res.failed;
                throw new errors/* DeployError */.sH('command-failed', `${f?.name} failed on ${h.target.name} (exit ${f?.exitCode ?? 'none'}): ${(f?.output ?? '').trim().split('\n').slice(-3).join(' | ')}`, { host: h.target.name });
            }
            report.health = await requireHealthy(ctx, h.target.healthSubject(stage.name), stage.health, stage.name);
        }
        catch (e) {
            if (e instanceof HealthFailed)
                report.health = e.health;
            err = (0,errors/* toDeployError */.pH)(e, 'command-failed').withContext({ host: h.target.name, phase: stage.name });
            // A dropped connection or a cancelled command leaves the host's state unknown: treat it as touched, so the
            // rollback looks (it leaves a host whose `current` was never switched as it is).
            if (['unreachable', 'timeout', 'cancelled'].includes(err.errorClass))
                h.touched = true;
        }
        const info = err ? ctx.errorInfo(err, { host: h.target.name, phase: stage.name }) : undefined;
        attempts.push({
            attempt,
            ok: !err,
            durationMs: Date.now() - a0,
            error: info,
            delayBeforeMs: delayBefore,
        });
        ctx.emit({
            type: 'host-end',
            phase: stage.name,
            host: h.target.name,
            ok: !err,
            durationMs: Date.now() - a0,
            error: info,
            attempt,
        });
        if (!err) {
            report.ok = true;
            break;
        }
        report.error = info;
        if (h.touched) {
            await h.target
                .appendLog({
                event: 'deploy',
                stage: stage.name,
                previous: h.before,
                result: err.errorClass === 'cancelled' ? 'cancelled' : 'failed',
                attempt,
                error: info?.class,
            })
                .catch(() => undefined);
        }
        if (attempt >= stage.retry.attempts || !(0,errors/* isRetryable */.r3)(err, stage.retry.on) || ctx.signal.aborted)
            break;
        delayBefore = backoffDelay(stage.retry, attempt + 1, state.random);
        ctx.emit({
            type: 'retry',
            phase: stage.name,
            host: h.target.name,
            attempt: attempt + 1,
            delayMs: delayBefore,
            error: info,
        });
        await (0,duration/* sleep */.yy)(delayBefore, ctx.signal);
    }
    if (report.ok)
        report.error = undefined;
    report.durationMs = Date.now() - t0;
    return report;
}
/** After a rollback-stage failure the later stages are not deployed; the report lists them as skipped. */
function skipRemainingStages(plan, current, phases) {
    const idx = plan.phases.indexOf(current);
    for (const p of plan.phases.slice(idx + 1)) {
        if (p.kind !== 'stage')
            continue;
        phases.push({
            name: p.name,
            kind: 'stage',
            status: 'skipped',
            startedAt: new Date().toISOString(),
            durationMs: 0,
            hosts: [],
        });
    }
}

;// CONCATENATED MODULE: ./src/pipeline/phases/rollout.ts










/** How often a wave's progress line is refreshed. */
const PROGRESS_EVERY_MS = 1000;
/** Failing targets named in an escalation. */
const FIRST_FAILING = 10;
/**
 * A fleet stage: its targets roll out in waves, each target going through pre-flight, secrets, snapshot, deploy
 * and health on its own as soon as it has a slot, its connection given back when its part is done. A target that
 * fails is rolled back on its own and counted against the failure budget; the first wave is the canary, and any
 * failure there stops the rollout. When the budget is passed, no further target starts, the configured policy
 * rolls back what it names, and an escalation goes out. A wave that would start after the deploy window closed
 * is not started: its targets are left for the next window.
 */
async function runRollout(state, p, stage, rollout, input) {
    const { ctx } = state;
    const t0 = Date.now();
    const r = startPhase(state, p);
    const waves = (0,plan_waves/* splitWaves */.dr)(stage.targets, rollout);
    const tally = { failed: 0, done: 0, classes: new Map(), failing: [] };
    const reports = [];
    let stopped;
    let leftReason;
    let wi = 0;
    for (; wi < waves.length && !stopped; wi++) {
        if (ctx.signal.aborted)
            break;
        if (wi > 0 && rollout.pauseMs > 0)
            await (0,duration/* sleep */.yy)(rollout.pauseMs, ctx.signal);
        if (ctx.signal.aborted)
            break;
        // Checked when the wave would start, after the pause: a pause may well outlast the window.
        const window = ctx.config.window;
        if (window && !input.ignoreWindow && !(0,plan_window/* inWindow */.g)(window, new Date())) {
            leftReason = `the deploy window (${window.text}) closed before wave ${wi + 1} of ${waves.length}`;
            break;
        }
        const wave = waves[wi];
        const w = await runWave(state, stage, rollout, wave, wi, waves.length, tally, input, r);
        reports.push(w.report);
        state.waves.push(w.report);
        if (w.stopped)
            stopped = { reason: w.stopped, wave: wi + 1, scope: w.scope ?? 'wave' };
        else if (rollout.soakMs > 0 && !ctx.signal.aborted) {
            const soaked = await soak(state, stage, rollout, w.report, wi === 0 && waves.length > 1, r, tally);
            if (soaked)
                stopped = { reason: soaked.reason, wave: wi + 1, scope: soaked.scope };
        }
    }
    const untouched = waves.slice(wi).flat();
    const notStartedInWaves = reports.flatMap((w) => w.targets.filter((t) => !r.hosts.some((h) => h.host === t)));
    const left = [...notStartedInWaves, ...untouched];
    if (left.length && (stopped || leftReason || ctx.signal.aborted))
        state.left = {
            targets: [...(state.left?.targets ?? []), ...left],
            reason: stopped
                ? `the rollout of ${stage.name} stopped at wave ${stopped.wave}: ${stopped.reason}`
                : (leftReason ?? 'the run was cancelled'),
        };
    if (ctx.signal.aborted) {
        const info = {
            class: 'cancelled',
            message: `cancelled during ${stage.name}`,
            phase: stage.name,
        };
        endPhase(state, r, t0, info);
        throw new Stop([...state.runs.values()].some((h) => h.touched) ? 'failed' : 'aborted', info);
    }
    if (stopped) {
        const info = {
            class: mostCommon(tally.classes) ?? 'health-failed',
            message: `failure budget of ${stage.name} passed in wave ${stopped.wave}: ${stopped.reason}`,
            phase: stage.name,
        };
        const escalation = {
            stage: stage.name,
            wave: stopped.wave,
            reason: stopped.reason,
            rate: tally.done ? tally.failed / tally.done : 0,
            classes: Object.fromEntries(tally.classes),
            firstFailing: tally.failing.slice(0, FIRST_FAILING),
        };
        state.escalation = escalation;
        const last = reports[reports.length - 1];
        if (last) {
            last.escalation = escalation;
            last.left = left;
        }
        ctx.emit({ type: 'escalation', escalation });
        endPhase(state, r, t0, info);
        const policy = rollout.onBudgetExceeded;
        const live = (names) => names.filter((n) => state.runs.get(n)?.onNew && !state.runs.get(n)?.rollback);
        if (policy === 'rollback-wave')
            await rollbackHosts(state, live(waves[stopped.wave - 1]), stage.name, r);
        if (policy === 'rollback-all') {
            await rollbackHosts(state, live(rollbackAllScope(state, stage)), stage.name, r);
            throw new Stop(statusAfterRollbackAll(state, stage), info);
        }
        // The rollout stopped short of its stage: whatever it left live, the run did not do what it was asked to.
        throw new Stop('failed', info);
    }
    // The stage's tests gate what comes next, as for any stage.
    const failure = stage.tests ? await gate(state, r, stage) : undefined;
    if (failure) {
        endPhase(state, r, t0, failure);
        const scope = stage.onFailure === 'rollback-all' ? rollbackAllScope(state, stage) : stage.targets;
        await rollbackHosts(state, scope, stage.name, r);
        r.status = state.noRollback ? 'failed' : 'rolled_back';
        throw new Stop(stage.onFailure === 'rollback-all' ? statusAfterRollbackAll(state, stage) : 'failed', failure);
    }
    const failedHosts = r.hosts.filter((h) => !h.ok);
    if (failedHosts.length) {
        // Within the budget: the stage is live on the rest; the failed targets were rolled back one by one.
        const info = {
            class: mostCommon(tally.classes) ?? 'health-failed',
            message: `${failedHosts.length} of ${stage.targets.length} targets of ${stage.name} failed (within the failure budget): ${failedHosts
                .slice(0, 5)
                .map((h) => h.host)
                .join(', ')}${failedHosts.length > 5 ? ', ...' : ''}`,
            phase: stage.name,
        };
        endPhase(state, r, t0);
        r.error = info;
        state.partial ??= info;
    }
    else
        endPhase(state, r, t0);
    if (left.length && leftReason)
        state.partial ??= { class: 'precondition', message: leftReason, phase: stage.name };
    return 'deployed';
}
async function runWave(state, stage, rollout, targets, index, count, tally, input, r) {
    const { ctx } = state;
    const started = Date.now();
    const report = {
        stage: stage.name,
        index: index + 1,
        targets,
        ok: 0,
        failed: 0,
        notStarted: 0,
        startedAt: new Date(started).toISOString(),
        durationMs: 0,
        budget: {
            maxFail: rollout.maxFail,
            maxFailPercentage: rollout.maxFailPercentage,
            failRate: 0,
            exceeded: false,
            policy: rollout.onBudgetExceeded,
        },
    };
    ctx.emit({ type: 'wave-start', phase: stage.name, wave: index + 1, waves: count, targets: targets.length });
    let stopped;
    let scope;
    const canary = index === 0 && count > 1;
    let running = 0;
    let next = 0;
    const progress = () => {
        const done = report.ok + report.failed;
        const minutes = (Date.now() - started) / 60_000;
        const perMinute = minutes > 0 ? done / minutes : 0;
        ctx.emit({
            type: 'wave-progress',
            phase: stage.name,
            wave: index + 1,
            done,
            failed: report.failed,
            running,
            total: targets.length,
            perMinute: Math.round(perMinute * 10) / 10,
            etaSeconds: perMinute > 0 ? Math.round(((targets.length - done) / perMinute) * 60) : undefined,
        });
    };
    const ticker = setInterval(progress, PROGRESS_EVERY_MS);
    ticker.unref();
    try {
        await Promise.all(Array.from({ length: Math.min(stage.parallel, targets.length) }, async () => {
            while (next < targets.length && !stopped && !ctx.signal.aborted) {
                const name = targets[next++];
                running++;
                const hr = await fleetTarget(state, stage, rollout, targetRun(state, name), index + 1, input);
                running--;
                r.hosts.push(hr);
                tally.done++;
                if (hr.ok)
                    report.ok++;
                else {
                    report.failed++;
                    tally.failed++;
                    const cls = hr.error?.class ?? 'internal';
                    tally.classes.set(cls, (tally.classes.get(cls) ?? 0) + 1);
                    if (tally.failing.length < FIRST_FAILING)
                        tally.failing.push(name);
                }
                if (!stopped) {
                    const verdict = (0,plan_waves/* budgetExceeded */.rT)({
                        waveFailed: report.failed,
                        waveSize: targets.length,
                        failed: tally.failed,
                        total: stage.targets.length,
                        canary,
                    }, rollout);
                    stopped = verdict?.reason;
                    scope = verdict?.scope;
                }
            }
        }));
    }
    finally {
        clearInterval(ticker);
    }
    progress();
    report.notStarted = targets.length - report.ok - report.failed;
    report.durationMs = Date.now() - started;
    report.budget = {
        ...report.budget,
        failRate: targets.length ? report.failed / targets.length : 0,
        exceeded: !!stopped,
        decision: stopped,
        scope,
    };
    ctx.emit({
        type: 'wave-end',
        phase: stage.name,
        wave: index + 1,
        ok: report.ok,
        failed: report.failed,
        notStarted: report.notStarted,
        durationMs: report.durationMs,
        stopped,
    });
    return { report, stopped, scope };
}
/**
 * One target's whole part of the stage: pre-flight and its lock, env file, rollback point, deploy with the stage's
 * retry and health checks, then (deployed) its release log and pruning or (failed) its own rollback. Its
 * connection is given back at the end, so a fleet holds only as many as it works on at once.
 */
async function fleetTarget(state, stage, rollout, h, wave, input) {
    const { ctx } = state;
    const name = h.target.name;
    const t0 = Date.now();
    const steps = [];
    try {
        if (!h.locked) {
            const pre = await preflightOne(state, stage.name, name, 0, input.heartbeats);
            steps.push(...pre.steps);
            if (!pre.ok)
                return withWave(pre, wave);
        }
        const content = input.envFiles.get(name);
        if (ctx.config.secrets && h.target.writeSecrets && content !== undefined) {
            const sec = await h.target.writeSecrets(ctx.config.secrets.file, content);
            if (sec.state === 'written')
                h.envWritten = true;
            steps.push(...(sec.steps?.steps ?? []));
        }
        const snap = await h.target.snapshot(h.onNew ? undefined : h.before, { infra: !h.onNew });
        steps.push(...(snap.steps?.steps ?? []));
        if (snap.point)
            h.before = snap.point.previous;
        else if (h.onNew)
            h.noRollbackPoint = true;
        h.infraSnapshot = snap.point?.infraSnapshot;
        const hr = await deployTarget(state, h, stage);
        hr.steps = [...steps, ...hr.steps];
        recordDeploy(state, hr);
        if (hr.ok) {
            await settle(h, stage, { hosts: [hr] });
            h.settled = true;
        }
        else if (h.touched || h.onNew) {
            const phase = { hosts: [hr] };
            await rollbackHosts(state, [name], stage.name, phase);
        }
        return withWave(hr, wave);
    }
    catch (err) {
        const hr = hostResult(state, stage.name, name, t0, { ok: false, steps }, err);
        if (h.touched || h.onNew)
            await rollbackHosts(state, [name], stage.name, { hosts: [hr] });
        return withWave(hr, wave);
    }
    finally {
        // Nothing later in the stage needs this target's lock unless the budget policy may roll back targets that
        // succeeded, or a soak checks the wave again and may roll it back: then it is kept until the run ends.
        if (h.locked &&
            input.releaseEarly &&
            rollout.onBudgetExceeded === 'rollback-failed' &&
            rollout.soakMs === 0 &&
            !h.rollback?.pending) {
            input.heartbeats.stop(name);
            if (await h.target.releaseLock().catch(() => false)) {
                h.lockReleased = true;
                record(state, 'lock-released', name);
            }
        }
        if (!h.lockReleased)
            h.idle = true;
        await h.target.close().catch(() => undefined);
    }
}
function withWave(hr, wave) {
    hr.detail = { ...hr.detail, wave };
    return hr;
}
/**
 * After a wave, wait the soak time and check its live targets again: a release that degrades after a while
 * (memory, a leak, a slow dependency) is caught before the next wave. Failures count against the budget as
 * failures of the wave (the canary's budget stays zero), the wave's report says so, and the failed targets are
 * rolled back. The checks run as wide as the stage, each target's connection given back when its check is done.
 */
async function soak(state, stage, rollout, wave, canary, r, tally) {
    const { ctx } = state;
    await (0,duration/* sleep */.yy)(rollout.soakMs, ctx.signal);
    if (ctx.signal.aborted)
        return undefined;
    const live = wave.targets.map((n) => targetRun(state, n)).filter((h) => h.onNew && !h.rollback);
    let failed = 0;
    await (0,concurrency/* mapLimit */.s)(live, stage.parallel, async (h) => {
        try {
            await requireHealthy(ctx, h.target.healthSubject(stage.name), stage.health, `${stage.name} (soak)`);
        }
        catch (err) {
            failed++;
            tally.failed++;
            wave.ok--;
            wave.failed++;
            const info = ctx.errorInfo(err, { host: h.target.name, phase: stage.name });
            tally.classes.set(info.class, (tally.classes.get(info.class) ?? 0) + 1);
            if (tally.failing.length < FIRST_FAILING)
                tally.failing.push(h.target.name);
            const hr = r.hosts.find((x) => x.host === h.target.name);
            if (hr) {
                hr.ok = false;
                hr.error = info;
            }
            await rollbackHosts(state, [h.target.name], stage.name, r);
        }
        finally {
            await h.target.close().catch(() => undefined);
        }
    });
    if (failed === 0)
        return undefined;
    record(state, 'rollback', stage.name, `${failed} target(s) failed the soak after wave ${wave.index}`);
    const budget = wave.budget ?? { failRate: 0, exceeded: false };
    budget.failRate = wave.targets.length ? wave.failed / wave.targets.length : 0;
    const why = (0,plan_waves/* budgetExceeded */.rT)({
        waveFailed: wave.failed,
        waveSize: wave.targets.length,
        failed: tally.failed,
        total: stage.targets.length,
        canary,
    }, rollout);
    if (!why)
        return undefined;
    const reason = `the soak after wave ${wave.index}: ${why.reason}`;
    const scope = why.scope;
    wave.budget = { ...budget, exceeded: true, decision: reason, scope };
    return { reason, scope };
}
function mostCommon(m) {
    let best;
    for (const e of m)
        if (!best || e[1] > best[1])
            best = e;
    return best?.[0];
}

;// CONCATENATED MODULE: ./src/pipeline/phases/secrets.ts


/**
 * Writes each target's env file (atomic, 0600, verified on the target). A failure aborts the run; the files already
 * replaced on other targets (and on the failed one, if its write got that far) are put back when the run ends, like
 * every env file of an aborted run. Targets
 * without an env file of their own (a Vercel project, a runner platform) get the values in their commands'
 * environment instead, and are skipped here.
 */
function runSecrets(state, p, file, envFiles) {
    return abortingHostPhase(state, p, async (name) => {
        const h = targetRun(state, name);
        const content = envFiles.get(name);
        if (!h.target.writeSecrets || content === undefined)
            return { detail: { file, state: 'not-applicable', changed: '' } };
        let res;
        try {
            res = await h.target.writeSecrets(file, content);
        }
        catch (err) {
            // The write may have got as far as the swap before it failed (a lost channel, a cancel): the cleanup then
            // undoes exactly what this run did there, which is nothing if it got nowhere.
            h.envWritten = true;
            throw err;
        }
        if (res.state === 'written')
            h.envWritten = true;
        return { res: res.steps, detail: { file, state: res.state, changed: res.changed.join(',') } };
    });
}

;// CONCATENATED MODULE: ./src/pipeline/phases/snapshot.ts


/**
 * Records each target's rollback point and, where configured, takes an infrastructure snapshot first (if that
 * fails, the target has not been changed by the deploy yet). A target already on this release keeps the point an
 * earlier job recorded, and gets no second infrastructure snapshot.
 */
function runSnapshot(state, p) {
    const { ctx } = state;
    return abortingHostPhase(state, p, async (name) => {
        const h = targetRun(state, name);
        const out = await h.target.snapshot(h.onNew ? undefined : h.before, { infra: !h.onNew });
        for (const w of out.warnings ?? [])
            ctx.emit({
                type: 'log',
                level: 'warn',
                message: `${name}: snapshot ${out.point?.infraSnapshot ?? ''}: ${w}`,
            });
        if (out.point)
            h.before = out.point.previous;
        else if (h.onNew)
            h.noRollbackPoint = true;
        h.infraSnapshot = out.point?.infraSnapshot;
        record(state, 'snapshot', name, `rollback point: ${h.noRollbackPoint ? '(none recorded)' : (h.before ?? '(none)')}`);
        return { res: out.steps, detail: { rollbackTo: h.noRollbackPoint ? null : h.before } };
    });
}

;// CONCATENATED MODULE: ./src/pipeline/phases/verify.ts






/**
 * Runs every stage's checks and the verify checks against every target that runs the new release. A failure, or
 * any error while checking (a target that dropped), rolls back everything unless the config says not to
 * (verify.on_failure). Fleet targets were checked by their stage a moment ago: they get only the verify checks,
 * and a failing one is rolled back on its own and counted against its stage's failure budget.
 */
async function runVerify(state, p) {
    const { ctx } = state;
    const { config } = ctx;
    const t0 = Date.now();
    const stageOf = (h) => config.stages.find((s) => s.name === h.stage);
    const live = [...state.runs.values()].filter((h) => h.onNew && h.stage && (!stageOf(h)?.rollout || config.verify.health.length > 0));
    const r = startPhase(state, { ...p, hosts: live.map((h) => h.target.name) });
    r.hosts = await (0,concurrency/* mapLimit */.s)(live, config.parallel, (h) => verifyHost(state, h, stageOf(h), p.name));
    const failed = r.hosts.filter((h) => !h.ok);
    if (failed.length === 0)
        return endPhase(state, r, t0);
    const info = {
        class: 'health-failed',
        message: `verification failed on ${failed.map((f) => f.host).join(', ')}: ${failed[0].error?.message}`,
        phase: p.name,
    };
    const isFleet = (name) => !!stageOf(state.runs.get(name))?.rollout;
    if (failed.every((f) => isFleet(f.host)) && config.verify.onFailure === 'rollback-all') {
        await rollbackHosts(state, failed.map((f) => f.host), p.name, r);
        const over = config.stages
            .filter((s) => s.rollout)
            .map((s) => fleetBudget(s, failed.filter((f) => stageOf(state.runs.get(f.host)) === s).length))
            .find(Boolean);
        endPhase(state, r, t0, over ? info : undefined);
        if (over)
            throw new Stop('failed', { ...info, message: `${info.message}; ${over}` });
        state.partial ??= info;
        return;
    }
    endPhase(state, r, t0, info);
    if (config.verify.onFailure !== 'rollback-all')
        throw new Stop('failed', info);
    await rollbackHosts(state, live.map((h) => h.target.name), p.name, r);
    r.status = state.noRollback ? 'failed' : 'rolled_back';
    throw new Stop(state.noRollback ? 'failed' : 'rolled_back', info);
}
function fleetBudget(s, failed) {
    if (!s.rollout || failed === 0)
        return undefined;
    return (0,plan_waves/* budgetExceeded */.rT)({ waveFailed: 0, waveSize: 1, failed, total: s.targets.length, canary: false }, s.rollout)?.reason;
}
async function verifyHost(state, h, stage, phase) {
    const { ctx } = state;
    const h0 = Date.now();
    const checks = [...(stage?.rollout ? [] : (stage?.health ?? [])), ...ctx.config.verify.health];
    let health = [];
    let info;
    try {
        health = await requireHealthy(ctx, h.target.healthSubject(h.stage ?? phase), checks, phase);
    }
    catch (err) {
        if (err instanceof HealthFailed)
            health = err.health;
        info = ctx.errorInfo(err, { phase, host: h.target.name });
    }
    finally {
        if (stage?.rollout)
            await h.target.close().catch(() => undefined);
    }
    const durationMs = Date.now() - h0;
    ctx.emit({ type: 'host-end', phase, host: h.target.name, ok: !info, durationMs, error: info, attempt: 1 });
    return { host: h.target.name, ok: !info, durationMs, attempts: [], steps: [], health, error: info };
}

;// CONCATENATED MODULE: ./src/pipeline/runner.ts


















/**
 * How long a cancelled run may still take: the runner sends SIGINT, then SIGTERM 7.5 s later, then kills. Within
 * this budget remote commands are killed, touched hosts rolled back without waiting for health, env files
 * restored and locks released.
 */
const CANCEL_BUDGET_MS = 6000;
/**
 * Executes a plan: pre-flight → secrets → snapshot → stages (deploy, health, tests; retry) → verify, applying the
 * failure rules, and always returns a report; it never throws for a failed deploy.
 */
async function runDeploy(opts) {
    const started = Date.now();
    const { config, redactor } = opts;
    const controller = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, controller.signal]) : controller.signal;
    // Every command in flight listens on the run's signal (up to max_channels per target worked on at once): far
    // past Node's leak warning of 10 at a fleet's parallel, and not a leak.
    const widest = Math.max(config.parallel, ...config.stages.map((s) => s.parallel));
    (0,external_node_events_.setMaxListeners)(widest * 8 + 20, signal);
    const runToken = opts.runToken ?? (0,external_node_crypto_.randomBytes)(6).toString('hex');
    const release = { id: (0,run_release/* releaseIdFor */.k)(opts.commit), commit: opts.commit, ref: opts.ref };
    const emit = (e) => {
        try {
            void opts.onEvent?.(redactor.redactDeep(e));
        }
        catch {
            /* a listener must never break a deploy */
        }
    };
    const audit = [];
    const ctx = {
        config,
        release,
        run: opts.run ?? {},
        runToken,
        redactor,
        signal,
        env: opts.env ?? process.env,
        files: [],
        emit,
        audit: (action, host, detail) => void audit.push({ time: new Date().toISOString(), action, host, detail }),
        errorInfo: (0,context/* errorInfoWith */.V)(redactor),
        force: opts.force,
    };
    const state = {
        ctx,
        targets: (0,src_targets/* createTargets */.T)(ctx, {
            fallbackKey: opts.fallbackKey,
            fallbackKnownHosts: opts.fallbackKnownHosts,
        }),
        runs: new Map(),
        phases: [],
        audit,
        lastPhase: 'preflight',
        rollbackFailed: false,
        random: opts.random,
        waves: [],
        noRollback: opts.rollbackOnFailure === false,
    };
    const onAbort = () => (state.cancelDeadline ??= Date.now() + CANCEL_BUDGET_MS);
    if (signal.aborted)
        onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    let lostLock;
    const heartbeats = new Heartbeats(heartbeatInterval(config.lock.staleAfterMs), (host) => {
        lostLock ??= host;
        // Not ours any more: the cleanup must not try to release it, nor warn that it could not.
        const h = state.runs.get(host);
        if (h)
            h.lockLost = true;
        controller.abort();
    }, idleBeatConnections(config.stages.map((s) => s.parallel)));
    let status = 'success';
    let error;
    let releaseSteps = {};
    try {
        const plan = (0,plan_plan/* buildPlan */.Gg)(config, opts.phases, opts.targets);
        emit({
            type: 'run-start',
            project: config.project,
            release: release.id,
            commit: release.commit,
            phases: plan.phases.map((p) => p.name),
        });
        addTargets(state, plan);
        await openWindow(state, { ignore: opts.ignoreWindow, wait: opts.waitForWindow });
        checkpoint(state, plan, opts.confirmed);
        releaseSteps = await beforeRelease(state, plan, {
            version: opts.releaseVersion,
            publisher: opts.tagPublisher,
        }).catch((err) => {
            throw new Stop('aborted', ctx.errorInfo(err, { phase: 'preflight' }));
        });
        const { envFiles } = prepareRun(state, plan, { files: opts.files });
        let degraded = false;
        for (const p of plan.phases) {
            if (signal.aborted) {
                // Between phases: what is deployed stays (it passed its checks); the report says where each host is.
                const changed = [...state.runs.values()].some((h) => h.touched);
                throw new Stop(changed ? 'failed' : 'aborted', {
                    class: 'cancelled',
                    message: 'the run was cancelled',
                    phase: p.name,
                });
            }
            if (p.kind === 'preflight') {
                await runPreflight(state, p, plan, heartbeats);
                if (opts.skipTests)
                    state.skippedTests = await checkTestsRecords(state, plan, opts.skipTests);
            }
            else if (p.kind === 'secrets' && config.secrets)
                await runSecrets(state, p, config.secrets.file, envFiles);
            else if (p.kind === 'snapshot')
                await runSnapshot(state, p);
            else if (p.kind === 'stage' && p.stage && !degraded) {
                const outcome = p.stage.rollout
                    ? await runRollout(state, p, p.stage, p.stage.rollout, {
                        heartbeats,
                        envFiles,
                        ignoreWindow: opts.ignoreWindow,
                        releaseEarly: plan.phases.filter((x) => x.kind === 'stage').pop() === p &&
                            !(plan.phases.some((x) => x.kind === 'verify') && config.verify.health.length > 0),
                    })
                    : await runStage(state, p, p.stage);
                if (outcome === 'continue-degraded') {
                    degraded = true;
                    const failedPhase = state.phases[state.phases.length - 1];
                    status = 'partial_success';
                    error = failedPhase.error;
                    skipRemainingStages(plan, p, state.phases);
                }
            }
            else if (p.kind === 'verify')
                await runVerify(state, p);
        }
        // Targets a fleet stage lost within its budget (or left for the next window) make the run a partial success.
        if (state.partial && status === 'success') {
            status = 'partial_success';
            error = state.partial;
        }
    }
    catch (err) {
        if (err instanceof Stop) {
            status = err.status;
            error = err.info;
        }
        else {
            status = [...state.runs.values()].some((h) => h.touched || h.onNew) ? 'failed' : 'aborted';
            error = ctx.errorInfo(err, { phase: state.lastPhase });
        }
    }
    finally {
        await heartbeats.stopAll();
        if (signal.aborted)
            await state.targets.killAll().catch(() => undefined);
    }
    // A lost lock aborts like a cancellation, so its phase failed as `cancelled`: say why instead.
    if (signal.aborted && (lostLock || error?.class !== 'cancelled')) {
        const why = lostLock
            ? `the deploy lock on ${lostLock} was taken away (released by an operator or taken over as stale)`
            : `cancelled during ${state.lastPhase}`;
        error = {
            ...(error ?? { phase: state.lastPhase }),
            class: lostLock ? 'lock-held' : 'cancelled',
            message: `${why}${error ? `: ${error.message}` : ''}`,
        };
        if (status === 'success' || status === 'partial_success')
            status = [...state.runs.values()].some((h) => h.touched) ? 'failed' : 'aborted';
    }
    // Before the locks go: they keep two runs from tagging and writing the changelog at once.
    const releaseReport = await afterRelease(state, releaseSteps, status);
    await cleanUp(state, status);
    if (state.rollbackFailed) {
        status = 'failed';
        const bad = [...state.runs.values()].filter((h) => h.rollback && !h.rollback.ok);
        const failedOn = bad.filter((h) => !h.rollback?.pending).map((h) => h.target.name);
        const runningOn = bad.filter((h) => h.rollback?.pending).map((h) => h.target.name);
        const what = [
            failedOn.length ? `ROLLBACK FAILED on ${failedOn.join(', ')}` : '',
            runningOn.length ? `ROLLBACK STILL RUNNING on ${runningOn.join(', ')} (handed over to the host)` : '',
        ].filter(Boolean);
        error = { ...error, message: `${what.join('; ')}; ${error?.message ?? ''}` };
    }
    const finals = await finalStates(state);
    await state.targets.closeAll();
    const durationSeconds = Math.round((Date.now() - started) / 100) / 10;
    emit({ type: 'run-end', status, durationSeconds });
    const report = {
        schema: 1,
        project: config.project,
        status,
        phase: state.lastPhase,
        systemsDeployed: finals
            .filter((f) => (f.state === 'new' || f.state === 'unchanged') && f.stage)
            .map((f) => f.host),
        durationSeconds,
        startedAt: new Date(started).toISOString(),
        finishedAt: new Date().toISOString(),
        release,
        run: opts.run ?? {},
        phasesRequested: opts.phases,
        error,
        rollbackFailed: state.rollbackFailed || undefined,
        audit: state.audit,
        phases: state.phases,
        hosts: finals,
        waves: state.waves.length ? state.waves : undefined,
        escalation: state.escalation,
        left: state.left,
        needsAttention: needsAttention(state, finals),
        releaseSteps: releaseReport,
        notRolledBack: notRolledBack(finals),
    };
    return redactor.redactDeep(report);
}
function notRolledBack(finals) {
    const names = finals.filter((f) => f.rollback?.skipped).map((f) => f.host);
    return names.length ? names : undefined;
}
/**
 * Targets a human must look at: a rollback that failed or is still running, or a target this run changed (or may
 * have) whose state nobody could read back. A target the run never reached is unknown but untouched: not here.
 */
function needsAttention(state, finals) {
    const names = finals
        .filter((f) => {
        if (f.rollback && !f.rollback.ok && !f.rollback.skipped)
            return true;
        return f.state === 'unknown' && !!state.runs.get(f.host)?.touched;
    })
        .map((f) => f.host);
    return names.length ? names : undefined;
}
function addTargets(state, plan) {
    const { config } = state.ctx;
    const stageOf = new Map();
    for (const s of config.stages)
        for (const h of s.targets)
            stageOf.set(h, s.name);
    for (const h of plan.hosts) {
        state.runs.set(h, {
            target: state.targets.get(h),
            stage: stageOf.get(h),
            before: null,
            startCurrent: null,
            startedOnNew: false,
            attempted: false,
            locked: false,
            prepared: false,
            touched: false,
            envWritten: false,
            onNew: false,
        });
    }
}

// EXTERNAL MODULE: ./src/secrets/redact.ts
var redact = __webpack_require__(4200);
// EXTERNAL MODULE: ./src/observe.ts + 4 modules
var src_observe = __webpack_require__(4225);
// EXTERNAL MODULE: ./src/report/status.ts
var report_status = __webpack_require__(6934);
;// CONCATENATED MODULE: ./src/engine.ts










/** The one entry the action, the CLI and the demo share. */
async function deploy(req) {
    // The token names this run's remote processes and lock; it reaches remote scripts, so its form is fixed.
    if (req.runToken !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(req.runToken))
        throw new errors/* DeployError */.sH('config', `run token ${JSON.stringify(req.runToken)} must be 1-64 letters, digits, '.', '_' or '-'`);
    const prepared = (0,prepare/* prepare */.i)(req.configPath, req.phase, req.targets);
    const { phases } = prepared;
    const config = req.lockWaitMs === undefined
        ? prepared.config
        : { ...prepared.config, lock: { ...prepared.config.lock, waitMs: req.lockWaitMs } };
    const commit = resolveRef(req.ref, config.dir);
    const redactor = req.redactor ?? new redact/* Redactor */.p();
    const env = req.env ?? process.env;
    // Tokens and webhook URLs are masked from the first line on, whatever events the config sends.
    for (const s of (0,src_observe/* observabilitySecrets */.lN)(config, env))
        redactor.add(s);
    const observe = {
        env,
        redactor,
        warn: (message) => void req.onEvent?.({ type: 'log', level: 'warn', message }),
        context: { repository: req.run?.repository, runUrl: req.run?.url, environment: req.environment },
    };
    const release = { id: (0,run_release/* releaseIdFor */.k)(commit), commit, ref: req.ref };
    await (0,src_observe/* notifyStarted */.x6)(config, release, observe);
    // An escalation goes out the moment the budget is passed, not when the run ends; the report says where it went.
    let escalated;
    const onEvent = (e) => {
        if (e.type === 'escalation')
            escalated = (0,src_observe/* notifyEscalation */.Pp)(config, release, e.escalation, observe);
        return req.onEvent?.(e);
    };
    const report = await runDeploy({
        config,
        ref: req.ref,
        commit,
        phases,
        targets: req.targets,
        run: req.run,
        env,
        redactor,
        signal: req.signal,
        onEvent,
        fallbackKey: req.fallbackKey,
        fallbackKnownHosts: req.fallbackKnownHosts,
        runToken: req.runToken,
        force: req.force,
        confirmed: req.confirmed,
        ignoreWindow: req.ignoreWindow,
        waitForWindow: req.waitForWindow,
        releaseVersion: req.releaseVersion,
        tagPublisher: req.tagPublisher,
        rollbackOnFailure: req.rollbackOnFailure,
        skipTests: req.skipTests,
    });
    if (escalated && report.escalation)
        Object.assign(report.escalation, await escalated);
    // Notifications and metrics never change a deploy's result, not even by throwing.
    await (0,src_observe/* publishOutcome */.Cu)(config, report, observe).catch((err) => observe.warn(`publishing the outcome failed: ${redactor.redact(String(err?.message ?? err))}`));
    return report;
}

/** `homelab-deploy rollback`: targets back to a recorded version, no rebuild; same locks, audit and report. */
async function rollback(req) {
    const config = (0,load/* loadConfig */.Z)(req.configPath);
    const redactor = req.redactor ?? new redact/* Redactor */.p();
    const env = req.env ?? process.env;
    for (const s of (0,src_observe/* observabilitySecrets */.lN)(config, env))
        redactor.add(s);
    if (config.secrets)
        for (const k of config.secrets.keys)
            if (env[k])
                redactor.add(env[k], k);
    return runManualRollback({
        config,
        to: req.to,
        targets: req.targets,
        run: req.run,
        env,
        redactor,
        signal: req.signal,
        onEvent: req.onEvent,
        fallbackKey: req.fallbackKey,
        fallbackKnownHosts: req.fallbackKnownHosts,
        confirmed: req.confirmed,
    });
}


/***/ })

};
;