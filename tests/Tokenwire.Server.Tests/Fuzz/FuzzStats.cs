using System.Collections.Concurrent;
using System.Text;

namespace Tokenwire.Server.Tests.Fuzz;

/// <summary>The fuzz tests run in this collection, alone: they are CPU-bound and measure process memory.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class FuzzCollection
{
    public const string Name = "Fuzz";
}

/// <summary>Thread-safe counters and distinct failures of a fuzz run; failures keep their first input for reproduction.</summary>
internal sealed class FuzzStats
{
    private readonly ConcurrentDictionary<string, long[]> _counts = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Failure> _failures = new(StringComparer.Ordinal);

    public void Count(string category, long n = 1) => Interlocked.Add(ref _counts.GetOrAdd(category, _ => new long[1])[0], n);

    public long Get(string category) => _counts.TryGetValue(category, out var c) ? Interlocked.Read(ref c[0]) : 0;

    public long Sum(Func<string, bool> filter) => _counts.Where(kv => filter(kv.Key)).Sum(kv => Interlocked.Read(ref kv.Value[0]));

    public IReadOnlyDictionary<string, long> Snapshot() => _counts.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToDictionary(kv => kv.Key, kv => kv.Value[0]);

    public bool HasFailures => !_failures.IsEmpty;

    /// <summary>Records a failure; failures with the same signature are counted once, with their first example.</summary>
    public void Fail(string signature, string detail, ReadOnlySpan<byte> input)
    {
        var example = input.Length > 600 ? Convert.ToHexString(input[..600]) + $"... ({input.Length} bytes)" : Convert.ToHexString(input);
        var failure = _failures.GetOrAdd(signature, _ => new Failure(detail, example));
        Interlocked.Increment(ref failure.Count);
    }

    public string Report()
    {
        var text = new StringBuilder();
        foreach (var (signature, failure) in _failures.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"\n- {signature} (x{failure.Count})\n  {failure.Detail}\n  input: {failure.Example}\n");
        }

        return text.ToString();
    }

    public string Counts() => string.Join('\n', Snapshot().Select(kv => $"  {kv.Key}: {kv.Value:N0}"));

    private sealed class Failure(string detail, string example)
    {
        public long Count;

        public string Detail { get; } = detail;

        public string Example { get; } = example;
    }
}
