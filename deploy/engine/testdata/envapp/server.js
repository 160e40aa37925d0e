'use strict';

// A test app for config vars: GET /NAME answers the value of the
// environment variable NAME, or "(unset)"; GET /healthz answers "ok".
const http = require('http');

const server = http.createServer((req, res) => {
  const name = decodeURIComponent(req.url.slice(1));
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
  if (name === 'healthz') {
    res.end('ok');
    return;
  }
  const v = process.env[name];
  res.end(v === undefined ? '(unset)' : v);
});

server.listen(Number(process.env.PORT || 3000));

process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
