// Sums the allocation samples (GCAllocationTick, one per ~100 KB a thread allocates) of an EventPipe recording by
// type and the frames that made them. TraceEvent parses the recording and resolves the stacks;
// what is written here is only the grouping. Usage:
//   dotnet-trace collect -p <server pid> --profile gc-verbose --duration 00:00:00:03 -o alloc.nettrace
//   dotnet bench/Tokenwire.Bench.AllocationStacks/bin/Release/net10.0/Tokenwire.Bench.AllocationStacks.dll alloc.nettrace [frames] [type]
using System.Globalization;
using Microsoft.Diagnostics.Tracing.Etlx;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

if (args.Length == 0)
{
    Console.Error.WriteLine("usage: Tokenwire.Bench.AllocationStacks <recording.nettrace> [frames, default 4] [only this type]");
    return 2;
}

var depth = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 4;
var onlyType = args.Length > 2 ? args[2] : null;
using var log = new TraceLog(TraceLog.CreateFromEventPipeDataFile(args[0]));
var bytesBySite = new Dictionary<string, long>();
long total = 0;
foreach (var e in log.Events)
{
    if (e is not GCAllocationTickTraceData sample || (onlyType is not null && sample.TypeName != onlyType)) continue;
    var frames = new List<string>();
    for (var frame = e.CallStack(); frame is not null && frames.Count < depth; frame = frame.Caller)
    {
        if (frame.CodeAddress.FullMethodName is { Length: > 0 } method) frames.Add(method.Length > 120 ? method[..120] : method);
    }

    var site = sample.TypeName + Environment.NewLine + string.Concat(frames.Select(f => "    " + f + Environment.NewLine));
    bytesBySite[site] = bytesBySite.GetValueOrDefault(site) + sample.AllocationAmount64;
    total += sample.AllocationAmount64;
}

Console.WriteLine($"sampled total: {total / 1_000_000.0:F1} MB");
foreach (var (site, bytes) in bytesBySite.OrderByDescending(s => s.Value).Take(25))
{
    Console.WriteLine($"{bytes / 1_000_000.0,8:F1} MB {100.0 * bytes / total,5:F1}%  {site}");
}

return 0;
