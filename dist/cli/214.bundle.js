"use strict";
exports.id = 214;
exports.ids = [214];
exports.modules = {

/***/ 2214:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

__webpack_require__.r(__webpack_exports__);
/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   describeHolder: () => (/* reexport safe */ _ssh_owner__WEBPACK_IMPORTED_MODULE_2__.s),
/* harmony export */   hostStatuses: () => (/* binding */ hostStatuses),
/* harmony export */   readReleaseLogs: () => (/* binding */ readReleaseLogs),
/* harmony export */   releaseLocks: () => (/* binding */ releaseLocks)
/* harmony export */ });
/* harmony import */ var _run_context__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(670);
/* harmony import */ var _util_concurrency__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(3731);
/* harmony import */ var _index__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(906);
/* harmony import */ var _ssh_owner__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(4116);



/** Operator views over any kind of target (`status`, `lock status|release`, `history`): they change nothing but locks. */

async function onEachTarget(config, names, opts, runToken, fn, onError) {
    const ctx = (0,_run_context__WEBPACK_IMPORTED_MODULE_0__/* .makeContext */ .o)(config, { runToken, env: opts.env, redactor: opts.redactor });
    const targets = (0,_index__WEBPACK_IMPORTED_MODULE_1__/* .createTargets */ .T)(ctx);
    try {
        return await (0,_util_concurrency__WEBPACK_IMPORTED_MODULE_3__/* .mapLimit */ .s)(names, config.parallel, async (name) => {
            try {
                return await fn(targets.get(name));
            }
            catch (err) {
                return onError(name, opts.redactor.redact(err.message));
            }
        });
    }
    finally {
        await targets.closeAll();
    }
}
/** Each target's state for operators: one round trip per target, no changes. */
function hostStatuses(config, names, opts) {
    return onEachTarget(config, names, opts, 'inspect', (t) => t.status(), (host, error) => ({ host, kind: config.targets[host]?.kind ?? 'ssh', reachable: false, error }));
}
/** `lock release`: stale locks only, unless forced; audited where the lock lives. */
function releaseLocks(config, names, opts) {
    return onEachTarget(config, names, opts, 'operator', (t) => t.releaseLockAsOperator({ operator: opts.operator, force: opts.force }), (host, error) => ({ host, outcome: 'error', error }));
}
/** Every target's release log, for `history`; unreachable targets are reported, not fatal. */
function readReleaseLogs(config, names, opts) {
    return onEachTarget(config, names, opts, 'history', async (t) => ({
        host: t.name,
        text: await t.readReleaseLog(),
    }), (host, error) => ({ host, error }));
}


/***/ })

};
;