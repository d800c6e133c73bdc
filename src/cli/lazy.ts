/**
 * The code that connects to targets (SSH, the HTTP clients, the pipeline), loaded when a command first needs it:
 * `--help`, `validate`, `plan` and `completion` start without it, which is most of their start-up time on a
 * large config. The bundler turns each into a chunk of its own next to the CLI's bundle.
 */
export const loadEngine = () => import('../engine');
export const loadInspect = () => import('../targets/inspect');
