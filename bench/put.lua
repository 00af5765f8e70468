-- put.lua - wrk script for the PUT rows of `make bench` (see docs/bench.md).
--
--   wrk -t2 -c32 -d8s -s bench/put.lua [-H 'Authorization: ...'] http://HOST:PORT -- FILE PREFIX
--
-- Every request is a PUT of FILE's bytes to PREFIX<thread>/<n>.bin, a new
-- path each time; the first 24 bytes of the body are replaced by
-- "%08d%016d" (thread, n) so that no two uploads have the same content
-- (no server can answer from deduplication). bench/run rebuilds the body
-- of thread 2, request 1 and checks that both servers stored it (thread 1
-- starts at 2: wrk calls request() once to probe the script and drops it).
--
-- done() prints one machine-readable line that bench/run parses:
--   BENCH requests=N duration_us=N bytes=N connect=N read=N write=N status=N timeout=N p50_us=N p99_us=N

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("id", #threads)
end

function init(args)
   local f = assert(io.open(args[1], "rb"))
   local data = f:read("*a")
   f:close()
   assert(#data > 24, "file too small")
   tail = data:sub(25)
   prefix = args[2]
   n = 0
end

function request()
   n = n + 1
   local tag = string.format("%08d%016d", id, n)
   return wrk.format("PUT", prefix .. id .. "/" .. n .. ".bin", nil, tag .. tail)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p99_us=%d\n",
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
      e.status, e.timeout, latency:percentile(50), latency:percentile(99)))
end
