// The fault stack's service: says which release it runs on every address of its host, and turns unhealthy when
// the deploy path's FAULT file names its release (how a cell makes a release fail its health check).
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const release = process.env.HD_RELEASE;
const fault = () => {
  try {
    return fs.readFileSync(path.join(process.env.HD_PATH, 'FAULT'), 'utf8').trim();
  } catch {
    return '';
  }
};

http
  .createServer((req, res) => {
    const bad = req.url === '/health' && fault() === release;
    res.writeHead(bad ? 503 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: bad ? 'fault' : 'ok', release }));
  })
  .listen(Number(process.env.HD_VAR_PORT), '0.0.0.0');
