/**
 * Removes `user:password@` from every URL in a text. fetch (undici) puts the whole URL, credentials included,
 * into some of its error messages, and a URL's password is not necessarily registered as a secret.
 */
export function stripUserinfo(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]*@/gi, '$1***@');
}
