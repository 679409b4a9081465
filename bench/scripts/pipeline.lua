-- wrk script: N pipelined `GET` requests per write (N = first script argument, default 16).
init = function(args)
  local depth = tonumber(args[1]) or 16
  local requests = {}
  for i = 1, depth do
    requests[i] = wrk.format(nil)
  end
  batch = table.concat(requests)
end

request = function()
  return batch
end
