'use strict';

// The smallest Flock app. Flock gives every instance its port in PORT and
// the release it runs in FLOCK_RELEASE, and stops it with SIGTERM.
const http = require('http');

const port = Number(process.env.PORT || 3000);
const release = process.env.FLOCK_RELEASE || 'dev';

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(`Hello from Flock (release ${release})\n`);
});

server.listen(port, () => {
  console.log(`hello ${release} listening on port ${port}`);
});

// Finish the requests in flight, then exit 0, so a redeploy drops nothing.
process.on('SIGTERM', () => {
  console.log('SIGTERM: closing the server');
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
