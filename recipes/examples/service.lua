-- A small web server in a container: started, checked with exec, stopped with a grace period.
--   pflask --recipe=service.lua [NAME]   (busybox httpd on its own loopback; needs busybox)
local pflask = require "pflask"
local sig = pflask.core.signals
local c <close> = pflask.container{ name = arg[1] or "pflask-service", namespaces = { net = true },
  command = { "busybox", "httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/etc" } }:start()
local healthy
for _ = 1, 50 do
  healthy = c:exec({ "busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/hostname" }, { stdout = "null", stderr = "null" }) == 0
  if healthy then break end
  pflask.sleep(0.1)
end
io.write("service: ", healthy and "healthy" or "unhealthy", "\n")
c:kill(sig.TERM)
if not c:wait{ timeout = 5 } then c:kill(sig.KILL); c:wait() end
return healthy and 0 or 1
