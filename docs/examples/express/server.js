'use strict';

// A Flock app with an npm dependency. Flock installs it with `npm ci` from
// package-lock.json and caches node_modules until the lockfile changes.
const express = require('express');

const port = Number(process.env.PORT || 3000);
const release = process.env.FLOCK_RELEASE || 'dev';
const app = express();

app.get('/', (req, res) => {
  res.type('text/plain').send(`Hello from Flock and Express (release ${release})\n`);
});

app.get('/healthz', (req, res) => {
  res.json({ ok: true, release });
});

const server = app.listen(port, () => {
  console.log(`hello-express ${release} listening on port ${port}`);
});

process.on('SIGTERM', () => {
  console.log('SIGTERM: closing the server');
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
