namespace Tokenwire.Demo;

/// <summary>
/// Settings of the browser demo, bound from <c>Tokenwire:Demo</c> (appsettings.json, <c>Tokenwire__Demo__*</c>
/// environment variables, <c>--Tokenwire:Demo:Name=value</c>). Documented in docs/CONFIGURATION.md.
/// </summary>
public sealed class DemoOptions
{
    /// <summary>The configuration section name.</summary>
    public const string SectionName = "Tokenwire:Demo";

    /// <summary>Serve the demo page at <c>/</c> and its endpoints under <c>/demo/</c>. Default: true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// The chat channel the agent publishes on and browsers subscribe to. Default: <c>persisted:demo</c>, in the
    /// persisted namespace, so a reloaded page gets the finished answers back from history. A channel outside a
    /// persisted namespace works too, but its history reaches back only <c>Tokenwire:HotWindow</c>.
    /// </summary>
    public string Channel { get; set; } = "persisted:demo";

    /// <summary>
    /// The chat channel of the message-per-response pattern (the page's switch, <c>/?pattern=response</c>): the agent
    /// publishes one message per answer and appends each token to it. It must allow mutable messages (the
    /// <c>mutable</c> namespace does by default, and keeps history). Default: <c>mutable:demo</c>.
    /// </summary>
    public string ResponseChannel { get; set; } = "mutable:demo";

    /// <summary>
    /// The key the agent publishes with and browser tokens are signed with, by name (<c>appId.keyId</c> of the root key
    /// or of a key in <c>Tokenwire:Keys</c>). It needs <c>publish</c> and <c>subscribe</c> on <see cref="Channel"/>.
    /// Default: empty, meaning the root key.
    /// </summary>
    public string? KeyName { get; set; }

    /// <summary>Lifetime of the subscribe-only browser tokens; ably-js renews them through the token URL. Default: 1 hour.</summary>
    public TimeSpan TokenTtl { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// The model: <c>simulated</c> (offline and deterministic: readable sentences from a small built-in corpus, chosen
    /// by the prompt) or <c>openai</c> (any OpenAI-compatible endpoint). Default: <c>simulated</c>.
    /// </summary>
    public string Model { get; set; } = "simulated";

    /// <summary>Simulated model pace in tokens per second (0 = as fast as possible). Default: 20.</summary>
    public double TokensPerSecond { get; set; } = 20;

    /// <summary>
    /// Longest simulated answer in tokens, when <see cref="Text"/> is empty: the answer ends at the last whole sentence
    /// that fits. Default: 150.
    /// </summary>
    public int AnswerTokens { get; set; } = 150;

    /// <summary>Simulated answer text, the same for every prompt. Default: empty, meaning sentences chosen by the prompt.</summary>
    public string? Text { get; set; }

    /// <summary>
    /// OpenAI-compatible API root for <c>Model=openai</c>, e.g. <c>http://localhost:11434/v1</c> (Ollama). Default: empty,
    /// meaning <c>$OPENAI_BASE_URL</c>, else <c>https://api.openai.com/v1</c>.
    /// </summary>
    public Uri? OpenAIEndpoint { get; set; }

    /// <summary>API key for <c>Model=openai</c>. Default: empty, meaning <c>$OPENAI_API_KEY</c>.</summary>
    public string? OpenAIApiKey { get; set; }

    /// <summary>Model name for <c>Model=openai</c>. Default: empty, meaning <c>$OPENAI_MODEL</c>, else <c>gpt-4o-mini</c>.</summary>
    public string? OpenAIModel { get; set; }

    /// <summary>Longest prompt accepted, in characters. Default: 2000.</summary>
    public int MaxPromptLength { get; set; } = 2000;

    /// <summary>Most responses streaming at once; further prompts get 429 until one ends. Default: 4.</summary>
    public int MaxConcurrentResponses { get; set; } = 4;
}
