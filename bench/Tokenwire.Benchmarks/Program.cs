using BenchmarkDotNet.Running;
using Tokenwire.Benchmarks;

// dotnet bench/Tokenwire.Benchmarks/bin/Release/net10.0/Tokenwire.Benchmarks.dll --filter '*'   (BenchmarkDotNet)
// dotnet bench/Tokenwire.Benchmarks/bin/Release/net10.0/Tokenwire.Benchmarks.dll --probe        (allocations, CPU per op)
if (args is ["--probe"])
{
    await Probe.RunAsync();
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
