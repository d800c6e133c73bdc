import { compareServices, parseStates, servicesFromComposeFiles } from '../../src/health/compose';

// `docker compose ps --all --format json` as Docker Compose v2 prints it. Before v2.21 the output is one JSON
// array; from v2.21 on it is one JSON object per line. Both captured from real Compose output (IDs shortened).
const V2_ARRAY = JSON.stringify([
  {
    ID: '4f1c2a9e5b7d',
    Name: 'shop-web-1',
    Image: 'nginx:1.25',
    Command: '"/docker-entrypoint.sh nginx -g \'daemon off;\'"',
    Project: 'shop',
    Service: 'web',
    Created: 1700000000,
    State: 'running',
    Status: 'Up 2 minutes (healthy)',
    Health: 'healthy',
    ExitCode: 0,
    Publishers: [{ URL: '0.0.0.0', TargetPort: 80, PublishedPort: 8080, Protocol: 'tcp' }],
  },
  {
    ID: '9a8b7c6d5e4f',
    Name: 'shop-worker-1',
    Image: 'shop/worker:3',
    Command: '"python -m worker"',
    Project: 'shop',
    Service: 'worker',
    Created: 1700000001,
    State: 'exited',
    Status: 'Exited (1) 10 seconds ago',
    Health: '',
    ExitCode: 1,
    Publishers: null,
  },
]);

const V2_LINES = [
  {
    Command: '"docker-entrypoint.s…"',
    CreatedAt: '2024-03-01 10:00:00 +0100 CET',
    ExitCode: 0,
    Health: 'starting',
    ID: '1b2c3d4e5f60',
    Image: 'postgres:16',
    Labels: 'com.docker.compose.project=shop,com.docker.compose.service=db',
    LocalVolumes: '1',
    Mounts: 'shop_pgdata',
    Name: 'shop-db-1',
    Names: 'shop-db-1',
    Networks: 'shop_default',
    Ports: '5432/tcp',
    Project: 'shop',
    Publishers: [{ URL: '', TargetPort: 5432, PublishedPort: 0, Protocol: 'tcp' }],
    RunningFor: '5 seconds ago',
    Service: 'db',
    Size: '0B',
    State: 'running',
    Status: 'Up 5 seconds (health: starting)',
  },
  {
    Command: '"/docker-entrypoint.…"',
    CreatedAt: '2024-03-01 10:00:00 +0100 CET',
    ExitCode: 0,
    Health: '',
    ID: '6f5e4d3c2b1a',
    Image: 'nginx:1.25',
    Labels: 'com.docker.compose.project=shop,com.docker.compose.service=web',
    Name: 'shop-web-1',
    Names: 'shop-web-1',
    Project: 'shop',
    Publishers: [],
    Service: 'web',
    State: 'running',
    Status: 'Up 5 seconds',
  },
]
  .map((o) => JSON.stringify(o))
  .join('\n');

// `podman ps -a --format json` for a podman-compose 1.0.3 stack: the service is only in a label.
const PODMAN = JSON.stringify([
  {
    Names: ['shop_web_1'],
    State: 'running',
    Status: 'Up 3 minutes ago (healthy)',
    Labels: { 'com.docker.compose.service': 'web', 'io.podman.compose.project': 'shop' },
  },
  {
    Names: ['shop_db_1'],
    State: 'running',
    Status: 'Up 3 minutes ago (unhealthy)',
    Labels: { 'com.docker.compose.service': 'db', 'io.podman.compose.project': 'shop' },
  },
]);

describe('compose service states', () => {
  it('parses Docker Compose v2 JSON-array output', () => {
    expect(parseStates(V2_ARRAY, false)).toEqual([
      { service: 'web', state: 'running', health: 'healthy' },
      { service: 'worker', state: 'exited', health: '' },
    ]);
  });

  it('parses Docker Compose v2.21+ JSON-lines output, blank lines included', () => {
    expect(parseStates(`${V2_LINES}\n\n`, false)).toEqual([
      { service: 'db', state: 'running', health: 'starting' },
      { service: 'web', state: 'running', health: '' },
    ]);
  });

  it('parses podman output, health from the status text', () => {
    expect(parseStates(PODMAN, true)).toEqual([
      { service: 'web', state: 'running', health: 'healthy' },
      { service: 'db', state: 'running', health: 'unhealthy' },
    ]);
  });

  it('reports a declared service with no container as missing, and every unhealthy one', () => {
    const states = parseStates(V2_LINES, false);
    expect(compareServices(states, ['web', 'db', 'cache'])).toEqual({
      ok: false,
      detail: 'services not running/healthy: db: starting, cache: missing',
    });
    expect(compareServices(parseStates(V2_ARRAY, false), ['web', 'worker'])).toEqual({
      ok: false,
      detail: 'services not running/healthy: worker: exited',
    });
    expect(compareServices(parseStates(V2_ARRAY, false), ['web'])).toEqual({
      ok: true,
      detail: '1 service(s) running',
    });
    expect(compareServices([], [])).toMatchObject({ ok: false });
  });

  it('reads the declared services of a podman-compose stack from its compose files, merged in order', () => {
    const base = `
x-common: &common
  restart: unless-stopped
services:
  web: { image: nginx, <<: *common }
  db:
    image: postgres
  batch:
    image: shop/batch
    deploy: { replicas: 0 }
`;
    const override = `
services:
  db: { environment: { A: "1" } }
  metrics: { image: prom/node-exporter }
  batch: { deploy: { replicas: 2 } }
`;
    expect(servicesFromComposeFiles([base])).toEqual(['web', 'db']);
    expect(servicesFromComposeFiles([base, override])).toEqual(['web', 'db', 'batch', 'metrics']);
    expect(servicesFromComposeFiles(['services: {}\n'])).toEqual([]);
  });
});
