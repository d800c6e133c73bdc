import { DeployError } from '../errors';

export type TemplateVars = Record<string, string | undefined>;

/**
 * Fills `{{host.address}}`-style placeholders. Unknown names are an error, not an empty string:
 * a health check aimed at "http://:8080/" would otherwise fail in a confusing way.
 */
export function renderTemplate(text: string, vars: TemplateVars, where: string): string {
  return text.replace(/\{\{\s*([a-zA-Z0-9_.-]+)\s*\}\}/g, (_m, key: string) => {
    const v = vars[key];
    if (v === undefined) {
      const known = Object.keys(vars).filter((k) => vars[k] !== undefined);
      throw new DeployError('config', `${where}: unknown placeholder {{${key}}}; known: ${known.join(', ')}`);
    }
    return v;
  });
}
