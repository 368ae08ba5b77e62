using System.ClientModel;
using Microsoft.Extensions.AI;
using OpenAI;

namespace Tokenwire.AI.Chat;

/// <summary>
/// Settings of an OpenAI-compatible model (<see cref="OpenAIProvider.CreateChatClient"/>). Bind it from configuration, or
/// read the usual environment variables with <see cref="FromEnvironment"/>.
/// </summary>
public sealed record OpenAICompatibleOptions
{
    /// <summary>The OpenAI endpoint (<see cref="Uri"/> of the API root, e.g. <c>https://api.openai.com/v1</c>).</summary>
    public static readonly Uri OpenAIEndpoint = new("https://api.openai.com/v1");

    /// <summary>
    /// The API root of the server, including its version segment: <c>http://localhost:11434/v1</c> for Ollama,
    /// <c>http://localhost:8000/v1</c> for vLLM, <c>http://localhost:8080/v1</c> for llama.cpp. Default:
    /// <see cref="OpenAIEndpoint"/>.
    /// </summary>
    public Uri Endpoint { get; init; } = OpenAIEndpoint;

    /// <summary>The API key, sent as a Bearer token. Local servers usually ignore it. Default: null (sends <c>unused</c>).</summary>
    public string? ApiKey { get; init; }

    /// <summary>The model name, e.g. <c>gpt-4o-mini</c> or <c>llama3.2</c>; <see cref="ChatOptions.ModelId"/> overrides it
    /// per request. Default: <c>gpt-4o-mini</c>.</summary>
    public string Model { get; init; } = "gpt-4o-mini";

    /// <summary>Timeout of one HTTP request (the whole stream). Default: null (the OpenAI package's, 100 seconds).</summary>
    public TimeSpan? NetworkTimeout { get; init; }

    /// <summary>
    /// Options from <c>OPENAI_BASE_URL</c> (default <see cref="OpenAIEndpoint"/>), <c>OPENAI_API_KEY</c> and
    /// <c>OPENAI_MODEL</c> (default <c>gpt-4o-mini</c>).
    /// </summary>
    /// <param name="variables">Where to read them; default: the process environment.</param>
    public static OpenAICompatibleOptions FromEnvironment(Func<string, string?>? variables = null)
    {
        variables ??= Environment.GetEnvironmentVariable;
        var options = new OpenAICompatibleOptions();
        if (variables("OPENAI_BASE_URL") is { Length: > 0 } url) options = options with { Endpoint = new Uri(url) };
        if (variables("OPENAI_API_KEY") is { Length: > 0 } key) options = options with { ApiKey = key };
        if (variables("OPENAI_MODEL") is { Length: > 0 } model) options = options with { Model = model };
        return options;
    }
}

/// <summary>
/// Models behind OpenAI-compatible chat completions endpoints (OpenAI, Ollama, vLLM, llama.cpp's server, LM Studio...),
/// as <see cref="IChatClient"/>s from <c>Microsoft.Extensions.AI.OpenAI</c>:
/// <c>new OpenAIClient(key, {Endpoint}).GetChatClient(model).AsIChatClient()</c>. Wrap the result in a
/// <see cref="ChatClientBuilder"/> pipeline (<c>UseOpenTelemetry</c>, <c>UseLogging</c>, ...) before handing it to
/// <see cref="TokenStreamPublisher"/> as you would any other <see cref="IChatClient"/>.
/// </summary>
public static class OpenAIProvider
{
    /// <summary>The chat client for <paramref name="options"/>; dispose it when done.</summary>
    public static IChatClient CreateChatClient(OpenAICompatibleOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var clientOptions = new OpenAIClientOptions { Endpoint = options.Endpoint };
        if (options.NetworkTimeout is { } timeout) clientOptions.NetworkTimeout = timeout;
        // Local servers ignore the key, but the OpenAI package needs one.
        var client = new OpenAIClient(new ApiKeyCredential(string.IsNullOrEmpty(options.ApiKey) ? "unused" : options.ApiKey), clientOptions);
        return client.GetChatClient(options.Model).AsIChatClient();
    }
}
