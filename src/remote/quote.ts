/** Shell quoting lives in util/quote.ts (templates need it too); this name stays for the remote layer's callers. */
export { shExports, shQuote } from '../util/quote';
