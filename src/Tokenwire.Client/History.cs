namespace Tokenwire.Client;

/// <summary>Order of history results.</summary>
public enum HistoryDirection
{
    /// <summary>Newest first (Ably's default).</summary>
    Backwards,
    /// <summary>Oldest first.</summary>
    Forwards,
}

/// <summary>A history request (RSL2b, RTL10).</summary>
public sealed record HistoryQuery
{
    /// <summary>Only messages at or after this time. Default: null (no lower bound).</summary>
    public DateTimeOffset? Start { get; init; }

    /// <summary>Only messages at or before this time. Default: null (no upper bound).</summary>
    public DateTimeOffset? End { get; init; }

    /// <summary>Page size, 1 to 1000. Default: 100.</summary>
    public int Limit { get; init; } = 100;

    /// <summary>Result order. Default: <see cref="HistoryDirection.Backwards"/> (newest first).</summary>
    public HistoryDirection Direction { get; init; } = HistoryDirection.Backwards;

    /// <summary>
    /// Realtime channels only (RTL10b): return only messages published up to the channel's attach point, so history
    /// and live delivery join without a gap or overlap. The channel must be attached. Default: false.
    /// </summary>
    public bool UntilAttach { get; init; }
}

/// <summary>One page of results (TG), with a way to fetch the next one.</summary>
/// <typeparam name="T">Item type.</typeparam>
public sealed class PaginatedResult<T>
{
    private readonly Func<CancellationToken, Task<PaginatedResult<T>>>? _next;

    internal PaginatedResult(IReadOnlyList<T> items, Func<CancellationToken, Task<PaginatedResult<T>>>? next)
    {
        Items = items;
        _next = next;
    }

    /// <summary>The items of this page.</summary>
    public IReadOnlyList<T> Items { get; }

    /// <summary>True when another page exists (TG6).</summary>
    public bool HasNext => _next is not null;

    /// <summary>True when this is the last page (TG7).</summary>
    public bool IsLast => _next is null;

    /// <summary>Fetches the next page; on the last page returns an empty last page (ably-js returns null).</summary>
    public Task<PaginatedResult<T>> NextAsync(CancellationToken cancellationToken = default) =>
        _next is null ? Task.FromResult(new PaginatedResult<T>([], null)) : _next(cancellationToken);

    /// <summary>This page with each item converted, and its next pages converted the same way.</summary>
    internal PaginatedResult<TOut> Select<TOut>(Func<T, TOut> convert) =>
        new([.. Items.Select(convert)], _next is null ? null : async ct => (await _next(ct).ConfigureAwait(false)).Select(convert));
}
