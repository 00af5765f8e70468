// s3rver.js - an S3 server on loopback for the tests and bench/s3: the
// @20minutes/s3rver package (it checks SigV4 signatures), installed by
// scripts/install-deps into $S3RVER_DIR (default /opt/granary-s3rver).
// usage: node s3rver.js PORT DIRECTORY BUCKET (credentials: S3RVER / S3RVER)
'use strict';
const path = require('path');
const dir = process.env.S3RVER_DIR || '/opt/granary-s3rver';
const S3rver = require(path.join(dir, 'node_modules/@20minutes/s3rver/lib/s3rver'));
const [port, directory, bucket] = process.argv.slice(2);
const opts = {
    address: '127.0.0.1',
    port: Number(port),
    directory,
    silent: true,
    vhostBuckets: false,
    configureBuckets: [{ name: bucket }],
};
new S3rver(opts).run().then(() => console.log(`s3rver listening on ${port}`),
    (e) => { console.error(e); process.exit(1); });
process.on('SIGTERM', () => process.exit(0));
