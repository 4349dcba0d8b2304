-- wrk script for scenario 9 of `make bench`: counts the answers of the demo's
-- /adaptive by the work they got. Its handler reports "work_us":N and does a
-- quarter of the requested work when the load level is >= 50, so req/s alone
-- does not say at which work a capacity was measured. Prints one line:
--   work_us=1000:N,250:M[,status503:K]
local counts = {}
local threads = {}
-- thread:get copies strings but not tables between wrk's Lua states, so each
-- thread keeps its counts serialised in this global as well
tally = ""

function setup(thread)
    table.insert(threads, thread)
end

function response(status, headers, body)
    local w = status == 200 and body and body:match('"work_us":(%d+)')
    local key = w or ("status" .. status)
    counts[key] = (counts[key] or 0) + 1
    local parts = {}
    for k, v in pairs(counts) do table.insert(parts, k .. "=" .. v) end
    tally = table.concat(parts, " ")
end

function done(summary, latency, requests)
    local total, keys = {}, {}
    for _, t in ipairs(threads) do
        for k, v in string.gmatch(t:get("tally") or "", "(%w+)=(%d+)") do
            if not total[k] then table.insert(keys, k) end
            total[k] = (total[k] or 0) + tonumber(v)
        end
    end
    table.sort(keys, function(a, b) return total[a] > total[b] end)
    local parts = {}
    for _, k in ipairs(keys) do table.insert(parts, k .. ":" .. total[k]) end
    io.write("work_us=" .. (#parts > 0 and table.concat(parts, ",") or "-") .. "\n")
end
