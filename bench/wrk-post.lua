-- wrk script for bench/sms.ts (sms-ingress-http): POSTs the pre-signed webhooks of a file, one a
-- line ("<X-Twilio-Signature>\t<form body>"), each once in order (the file holds more than a round
-- can send, so no MessageSid repeats). Requests are formatted once, at start.
local reqs = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do
    local sig, body = line:match("([^\t]*)\t(.*)")
    reqs[#reqs + 1] = wrk.format("POST", args[2], { ["Content-Type"] = "application/x-www-form-urlencoded", ["X-Twilio-Signature"] = sig }, body)
  end
end
request = function()
  i = i + 1
  if i > #reqs then i = 1 end
  return reqs[i]
end
