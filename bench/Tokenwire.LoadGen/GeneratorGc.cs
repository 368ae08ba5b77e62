namespace Tokenwire.LoadGen;

/// <summary>The load generator's own garbage collections (counts and total pause), to tell its pauses from the server's.</summary>
internal readonly record struct GeneratorGc(int Gen0, int Gen1, int Gen2, double PauseMs)
{
    public static GeneratorGc Now() =>
        new(GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2), GC.GetTotalPauseDuration().TotalMilliseconds);

    public static GeneratorGc operator -(GeneratorGc a, GeneratorGc b) => new(a.Gen0 - b.Gen0, a.Gen1 - b.Gen1, a.Gen2 - b.Gen2, a.PauseMs - b.PauseMs);

    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Gen0}/{Gen1}/{Gen2}, pause {PauseMs:F1} ms");
}
