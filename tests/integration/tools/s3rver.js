// s3rver.js - an S3 server on loopback for the tests and bench/s3: the
// @20minutes/s3rver package (it checks SigV4 signatures), installed by
// scripts/install-deps into $S3RVER_DIR (default /opt/granary-s3rver).
// usage: node s3rver.js PORT DIRECTORY BUCKET... (credentials: S3RVER / S3RVER)
//
// Virtual-host addressing: a request to Host BUCKET.s3.localhost[:PORT] is
// for BUCKET (s3rver's serviceEndpoint "localhost"; libcurl resolves any
// *.localhost name to 127.0.0.1 itself). Requests to 127.0.0.1 stay path
// style (vhostBuckets off: s3rver does not take the whole host name as a
// bucket).
'use strict';
const path = require('path');
const dir = process.env.S3RVER_DIR || '/opt/granary-s3rver';
const lib = path.join(dir, 'node_modules/@20minutes/s3rver/lib');

// s3rver 5.0.0 computes a virtual-host request's SigV4 canonical URI as
// "/BUCKET/KEY", so it refuses every correctly signed one: SigV4 signs the
// path as sent, "/KEY" (AWS's "Signature Calculations for the Authorization
// Header"). Its authentication middleware is wrapped so that it checks the
// signature over the path as sent; it still refuses any signature that does
// not match. Each virtual-host request is logged on stdout ("vhost METHOD
// HOST PATH").
const authPath = require.resolve(path.join(lib, 'middleware/authentication'));
const authentication = require(authPath);
require.cache[authPath].exports = () => {
    const check = authentication();
    return async function vhostAuthentication(ctx, next) {
        if (!ctx.state.vhost || !ctx.params.bucket)
            return check(ctx, next);
        // one line per virtual-host request, for the tests to see the Host used
        console.log(`vhost ${ctx.method} ${ctx.host} ${ctx.originalUrl}`);
        // s3rver builds the URI from ctx.params: a path-style request for
        // "bucket" KEY has the canonical URI "/KEY"
        const params = ctx.params;
        ctx.state.vhost = false;
        ctx.params = { ...params, bucket: params.key, key: undefined };
        let restored = false;
        const restore = () => {
            if (!restored) {
                ctx.params = params;
                ctx.state.vhost = true;
                restored = true;
            }
        };
        try {
            return await check(ctx, () => {
                restore();
                return next();
            });
        } finally {
            restore();
        }
    };
};

const S3rver = require(path.join(lib, 's3rver'));
const [port, directory, ...buckets] = process.argv.slice(2);
const opts = {
    address: '127.0.0.1',
    port: Number(port),
    directory,
    silent: true,
    serviceEndpoint: 'localhost',
    vhostBuckets: false,
    configureBuckets: buckets.map((name) => ({ name })),
};
new S3rver(opts).run().then(() => console.log(`s3rver listening on ${port}`),
    (e) => { console.error(e); process.exit(1); });
process.on('SIGTERM', () => process.exit(0));
