// Starts kinesalite (a Kinesis API server) on 127.0.0.1:<port>, in memory, creates the
// streams named on the command line (1 shard each), then prints "kinesalite listening".
// Usage: node kinesalite-server.js <port> [stream ...]
const kinesalite = require('kinesalite');
const port = Number(process.argv[2]);
const streams = process.argv.slice(3);
const server = kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100 });

function call(target, body) {
  return fetch(`http://127.0.0.1:${port}/`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-amz-json-1.1',
      'X-Amz-Target': `Kinesis_20131202.${target}`,
      // kinesalite does not check signatures, but wants them to be present.
      'Authorization': 'AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=00',
      'X-Amz-Date': '20260101T000000Z',
    },
    body: JSON.stringify(body),
  }).then(async (r) => { const t = await r.text(); if (!r.ok) throw new Error(t); return JSON.parse(t || '{}'); });
}

server.listen(port, '127.0.0.1', async (err) => {
  if (err) { console.error(err); process.exit(1); }
  try {
    for (const name of streams) await call('CreateStream', { StreamName: name, ShardCount: 1 });
    // Wait until every stream is ACTIVE.
    for (const name of streams) {
      for (;;) {
        const d = await call('DescribeStream', { StreamName: name });
        if (d.StreamDescription.StreamStatus === 'ACTIVE') break;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  } catch (e) { console.error(e); process.exit(1); }
  console.log(`kinesalite listening on 127.0.0.1:${port}`);
});
