using BenchmarkDotNet.Running;
using Tokenwire.Benchmarks;

// dotnet bench/Tokenwire.Benchmarks/bin/Release/net10.0/Tokenwire.Benchmarks.dll --filter '*'   (BenchmarkDotNet)
// dotnet bench/Tokenwire.Benchmarks/bin/Release/net10.0/Tokenwire.Benchmarks.dll --probe        (allocations, CPU per op)
// dotnet bench/Tokenwire.Benchmarks/bin/Release/net10.0/Tokenwire.Benchmarks.dll --msgpack-compare [rounds, 15; 0: no timing]
//   (both msgpack codecs: disagreements on the decoder corpus, fuzz and malformed frames; interleaved timings)
if (args is ["--probe"])
{
    await Probe.RunAsync();
    return;
}

if (args is ["--msgpack-compare", ..])
{
    Environment.Exit(MsgPackComparison.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 15));
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
