// SIMULATOR — not a language model. SimulatedChatClient streams a fixed text, readable sentences chosen by the prompt
// from a small built-in corpus, or lorem ipsum of an exact length, at a configurable pace, so demos, tests and load runs
// work offline and deterministically without any model.
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.Extensions.AI;

namespace Tokenwire.AI.Chat;

/// <summary>What a <see cref="SimulatedChatClient"/> answers when no fixed text is configured.</summary>
public enum SimulatedTextStyle
{
    /// <summary>Lorem ipsum of exactly <see cref="SimulatedChatClientOptions.LoremTokens"/> tokens (for tests and load runs).</summary>
    Lorem,

    /// <summary>
    /// Readable sentences from a small built-in corpus, the topic chosen by the words of the prompt (a joke, a story, a
    /// recipe, how streaming or reloading works, ...): whole sentences only, at most
    /// <see cref="SimulatedChatClientOptions.AnswerTokens"/> tokens. For demos.
    /// </summary>
    Sentences,
}

/// <summary>Settings of a <see cref="SimulatedChatClient"/>.</summary>
public sealed record SimulatedChatClientOptions
{
    /// <summary>
    /// The text every response streams. Default: null, meaning a text derived from the last user message in
    /// <see cref="Style"/> (the same prompt always gives the same text).
    /// </summary>
    public string? Text { get; init; }

    /// <summary>What to answer when <see cref="Text"/> is null. Default: <see cref="SimulatedTextStyle.Lorem"/>.</summary>
    public SimulatedTextStyle Style { get; init; } = SimulatedTextStyle.Lorem;

    /// <summary>Length of the lorem ipsum response in tokens (<see cref="SimulatedTextStyle.Lorem"/>). Default: 150.</summary>
    public int LoremTokens { get; init; } = 150;

    /// <summary>
    /// Longest answer in tokens in <see cref="SimulatedTextStyle.Sentences"/>: it ends at the last whole sentence that
    /// fits (the first sentence is always whole, even when longer). Default: 150.
    /// </summary>
    public int AnswerTokens { get; init; } = 150;

    /// <summary>Streaming pace in tokens per second; 0 streams as fast as the consumer reads. Default: 50.</summary>
    public double TokensPerSecond { get; init; } = 50;

    /// <summary>Delay before the first token, like a model's time to first token. Default: zero.</summary>
    public TimeSpan FirstTokenDelay { get; init; } = TimeSpan.Zero;

    /// <summary>The model id reported on every update. Default: <c>tokenwire-simulator</c>.</summary>
    public string ModelId { get; init; } = "tokenwire-simulator";
}

/// <summary>
/// <b>A simulator, not a language model</b>: an <see cref="IChatClient"/> that streams a deterministic text — the
/// configured <see cref="SimulatedChatClientOptions.Text"/>, or one derived from the prompt (readable sentences or lorem
/// ipsum, <see cref="SimulatedChatClientOptions.Style"/>) — split into word-piece
/// tokens (<see cref="Tokenize"/>) at <see cref="SimulatedChatClientOptions.TokensPerSecond"/>. Every update carries a
/// fresh <see cref="ChatResponseUpdate.ResponseId"/> and <see cref="ChatResponseUpdate.MessageId"/> per response, the model
/// id <c>tokenwire-simulator</c>, and the last one the finish reason and usage. <see cref="ChatOptions.MaxOutputTokens"/>
/// cuts the response (finish reason <c>length</c>). Thread-safe.
/// </summary>
public sealed class SimulatedChatClient : IChatClient
{
    /// <summary>The provider name in <see cref="ChatClientMetadata"/>.</summary>
    public const string ProviderName = "tokenwire-simulator";

    private static readonly string[] LoremWords =
    [
        "lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do", "eiusmod", "tempor",
        "incididunt", "ut", "labore", "et", "dolore", "magna", "aliqua", "enim", "ad", "minim", "veniam", "quis",
        "nostrud", "exercitation", "ullamco", "laboris", "nisi", "aliquip", "ex", "ea", "commodo", "consequat", "duis",
        "aute", "irure", "in", "reprehenderit", "voluptate", "velit", "esse", "cillum", "eu", "fugiat", "nulla",
        "pariatur", "excepteur", "sint", "occaecat", "cupidatat", "non", "proident", "sunt", "culpa", "qui", "officia",
        "deserunt", "mollit", "anim", "id", "est", "laborum",
    ];

    private readonly ChatClientMetadata _metadata;

    /// <summary>Creates the simulator.</summary>
    /// <param name="options">Settings; default: lorem ipsum of 150 tokens at 50 tokens/s.</param>
    public SimulatedChatClient(SimulatedChatClientOptions? options = null)
    {
        Options = options ?? new SimulatedChatClientOptions();
        ArgumentOutOfRangeException.ThrowIfNegative(Options.TokensPerSecond);
        ArgumentOutOfRangeException.ThrowIfLessThan(Options.LoremTokens, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(Options.AnswerTokens, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(Options.FirstTokenDelay, TimeSpan.Zero);
        _metadata = new ChatClientMetadata(ProviderName, null, Options.ModelId);
    }

    /// <summary>The settings in force.</summary>
    public SimulatedChatClientOptions Options { get; }

    /// <summary>
    /// Splits text into word-piece tokens, deterministically: whitespace stays attached to the word after it, words of
    /// more than 6 characters are cut into pieces of 4, and punctuation is a token of its own. The tokens concatenate to
    /// exactly <paramref name="text"/>.
    /// </summary>
    public static IReadOnlyList<string> Tokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var tokens = new List<string>();
        var i = 0;
        while (i < text.Length)
        {
            var start = i;
            while (i < text.Length && char.IsWhiteSpace(text[i])) i++;
            var wordStart = i;
            while (i < text.Length && !char.IsWhiteSpace(text[i]) && !IsPunctuation(text[i])) i++;
            if (i == wordStart)
            {
                // Whitespace at the end, or whitespace (possibly none) before punctuation: one token with one symbol.
                if (i < text.Length) i = NextTextElement(text, i);
                tokens.Add(text[start..i]);
                continue;
            }

            var word = text[start..i];
            if (i - wordStart <= 6)
            {
                tokens.Add(word);
                continue;
            }

            // Long words become pieces of 4 (the first keeps the leading whitespace), never splitting a surrogate pair.
            var p = 0;
            var firstLength = (wordStart - start) + 4;
            while (p < word.Length)
            {
                var length = Math.Min(p == 0 ? firstLength : 4, word.Length - p);
                if (p + length < word.Length && char.IsHighSurrogate(word[p + length - 1])) length++;
                tokens.Add(word.Substring(p, length));
                p += length;
            }
        }

        return tokens;
    }

    /// <summary>The tokens a response to <paramref name="messages"/> streams (before any <see cref="ChatOptions.MaxOutputTokens"/> cut).</summary>
    public IReadOnlyList<string> GetTokens(IEnumerable<ChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (Options.Text is { } text) return Tokenize(text);
        var prompt = messages.LastOrDefault(m => m.Role == ChatRole.User)?.Text ?? string.Empty;
        return Options.Style == SimulatedTextStyle.Sentences
            ? Tokenize(SimulatedAnswers.Answer(prompt, Seed(prompt), Options.AnswerTokens))
            : Lorem(Seed(prompt), Options.LoremTokens);
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages,
        ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var materialized = messages as IReadOnlyCollection<ChatMessage> ?? [.. messages];
        var tokens = GetTokens(materialized);
        var count = tokens.Count;
        var finish = ChatFinishReason.Stop;
        if (options?.MaxOutputTokens is { } max && max < count)
        {
            count = Math.Max(0, max);
            finish = ChatFinishReason.Length;
        }

        var id = Guid.NewGuid().ToString("N");
        var responseId = "sim_" + id;
        var messageId = "msg_" + id;
        var created = DateTimeOffset.UtcNow;
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < count; i++)
        {
            // Token i is due at FirstTokenDelay + i / rate: an absolute schedule, so timer granularity does not drift.
            var due = Options.FirstTokenDelay + (Options.TokensPerSecond > 0 ? TimeSpan.FromSeconds(i / Options.TokensPerSecond) : TimeSpan.Zero);
            var wait = due - clock.Elapsed;
            if (wait > TimeSpan.Zero) await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
            else if (i % 64 == 63) await Task.Yield(); // unpaced: stay cancellable and fair
            cancellationToken.ThrowIfCancellationRequested();
            yield return new ChatResponseUpdate(ChatRole.Assistant, tokens[i])
            {
                ResponseId = responseId,
                MessageId = messageId,
                ModelId = Options.ModelId,
                CreatedAt = created,
            };
        }

        var input = materialized.Sum(m => Tokenize(m.Text).Count);
        yield return new ChatResponseUpdate(ChatRole.Assistant, [new UsageContent(new UsageDetails { InputTokenCount = input, OutputTokenCount = count, TotalTokenCount = input + count })])
        {
            ResponseId = responseId,
            MessageId = messageId,
            ModelId = Options.ModelId,
            CreatedAt = created,
            FinishReason = finish,
        };
    }

    /// <inheritdoc/>
    /// <remarks>Paced like the streaming response: it completes after the whole text was "generated".</remarks>
    public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);

    /// <inheritdoc/>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return _metadata;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
    }

    private static bool IsPunctuation(char c) => char.IsPunctuation(c) || char.IsSymbol(c);

    private static int NextTextElement(string text, int i) => i + (char.IsHighSurrogate(text[i]) && i + 1 < text.Length ? 2 : 1);

    /// <summary>FNV-1a over the UTF-16 code units: stable across processes and runtimes (string.GetHashCode is not).</summary>
    private static uint Seed(string prompt)
    {
        var hash = 2166136261u;
        foreach (var c in prompt)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return hash;
    }

    /// <summary>Lorem ipsum sentences from a small fixed PRNG (mulberry32), cut to exactly <paramref name="tokenCount"/> tokens.</summary>
    private static List<string> Lorem(uint seed, int tokenCount)
    {
        var random = new Mulberry32(seed);
        uint Next() => random.Next();

        var text = new StringBuilder();
        var tokens = new List<string>();
        var sentences = 0;
        while (tokens.Count < tokenCount)
        {
            var words = 6 + (int)(Next() % 10);
            for (var w = 0; w < words; w++)
            {
                var word = LoremWords[Next() % (uint)LoremWords.Length];
                if (w == 0) word = char.ToUpperInvariant(word[0]) + word[1..];
                if (text.Length > 0 && !(w == 0 && sentences % 5 == 0)) text.Append(' ');
                text.Append(word);
                if (w < words - 1 && Next() % 9 == 0) text.Append(',');
            }

            text.Append('.');
            sentences++;
            if (sentences % 5 == 0) text.Append("\n\n");
            // Tokens average well over 3 characters: tokenize only once the text can be long enough.
            if (text.Length >= tokenCount * 3) tokens = [.. Tokenize(text.ToString())];
        }

        return tokens.GetRange(0, tokenCount);
    }
}
