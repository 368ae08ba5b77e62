using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Tokenwire.Benchmarks -- --filter '*'   (see docs/BENCHMARKS.md)
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
