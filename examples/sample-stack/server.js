// A tiny service for the demo and the integration tests: it reports which release it runs, and turns
// unhealthy when the host's FAULT file names its own release (how the demo simulates a broken release).
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const port = Number(process.env.HD_VAR_PORT);
const release = process.env.HD_RELEASE;
const base = process.env.HD_PATH;

function fault() {
  try {
    return fs.readFileSync(path.join(base, 'FAULT'), 'utf8').trim();
  } catch {
    return '';
  }
}

http
  .createServer((req, res) => {
    if (req.url === '/health') {
      const bad = fault() === release;
      res.writeHead(bad ? 503 : 200, { 'content-type': 'application/json', 'x-release': release });
      res.end(JSON.stringify({ status: bad ? 'fault' : 'ok', release }));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`sample-stack ${release}\n`);
  })
  .listen(port, '127.0.0.1');
