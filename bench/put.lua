-- put.lua - wrk script for the PUT rows of `make bench` (see docs/bench.md).
--
--   wrk -t2 -c32 -d8s -s bench/put.lua [-H 'Authorization: ...'] http://HOST:PORT -- FILE PREFIX [CYCLE [RUN]]
--
-- Every request is a PUT of FILE's bytes to PREFIX<thread>/<n>.bin; the
-- first 24 bytes of the body are replaced by "%04d%04d%016d" (RUN, thread,
-- request number) so that no two uploads have the same content, across
-- the runs of one bench too (no server can answer from deduplication).
-- With CYCLE > 0, n in the path goes 1..CYCLE and starts again (later
-- uploads replace earlier ones), which bounds the number of files a long
-- run leaves behind. bench/run fetches PREFIX2/1.bin of run 1 from each
-- server and checks it is one of the bodies sent there. (Thread 1's first
-- request() result is wrk's probe of the script and is never sent.)
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
   cycle = tonumber(args[3] or "0")
   run = tonumber(args[4] or "0")
   n = 0
end

function request()
   n = n + 1
   local tag = string.format("%04d%04d%016d", run, id, n)
   local k = n
   if cycle > 0 then
      k = (n - 1) % cycle + 1
   end
   return wrk.format("PUT", prefix .. id .. "/" .. k .. ".bin", nil, tag .. tail)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p99_us=%d\n",
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
      e.status, e.timeout, latency:percentile(50), latency:percentile(99)))
end
