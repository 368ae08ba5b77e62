// Stands in for Microsoft.Extensions.AI.OpenAI (OpenAIClient.GetChatClient(model).AsIChatClient()), which is not
// available to this project: a small IChatClient adapter over the OpenAI 2.15.0 package's ChatClient. It maps
// ChatMessage (text, images, tool calls and results) and ChatOptions to OpenAI chat completions, and streamed chunks to
// ChatResponseUpdate. Any OpenAI-compatible server works: OpenAI, Ollama, vLLM, llama.cpp's server, LM Studio...
using System.ClientModel;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAIChat = OpenAI.Chat;

namespace Tokenwire.AI.Chat;

/// <summary>
/// Settings of an <see cref="OpenAICompatibleChatClient"/>. Bind it from configuration, or read the usual environment
/// variables with <see cref="FromEnvironment"/>.
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
/// An <see cref="IChatClient"/> for any OpenAI-compatible chat completions endpoint, over the OpenAI .NET package.
/// Streams text as <see cref="TextContent"/>, reports <see cref="ChatResponseUpdate.ResponseId"/> (the completion id),
/// the finish reason and usage (<see cref="UsageContent"/>), and assembles streamed tool calls into
/// <see cref="FunctionCallContent"/> when the completion finishes. Thread-safe.
/// </summary>
public sealed class OpenAICompatibleChatClient : IChatClient
{
    private readonly OpenAICompatibleOptions _options;
    private readonly ConcurrentDictionary<string, OpenAIChat.ChatClient> _clients = new(StringComparer.Ordinal);
    private readonly ChatClientMetadata _metadata;

    /// <summary>Creates the client.</summary>
    /// <param name="options">Endpoint, key and model.</param>
    public OpenAICompatibleChatClient(OpenAICompatibleOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(options.Endpoint);
        ArgumentException.ThrowIfNullOrEmpty(options.Model);
        _options = options;
        _metadata = new ChatClientMetadata("openai", options.Endpoint, options.Model);
    }

    /// <summary>The settings in force.</summary>
    public OpenAICompatibleOptions Options => _options;

    /// <inheritdoc/>
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var client = ClientFor(options?.ModelId);
        var completion = (await client.CompleteChatAsync(ToOpenAI(messages, options), ToOpenAI(options), cancellationToken).ConfigureAwait(false)).Value;
        var contents = new List<AIContent>();
        foreach (var part in completion.Content)
        {
            if (ToContent(part) is { } content) contents.Add(content);
        }

        if (!string.IsNullOrEmpty(completion.Refusal)) contents.Add(new ErrorContent(completion.Refusal) { ErrorCode = "refusal" });
        foreach (var call in completion.ToolCalls)
        {
            contents.Add(ToFunctionCall(call.Id, call.FunctionName, call.FunctionArguments?.ToString()));
        }

        var usage = completion.Usage is { } u ? ToUsage(u) : null;
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, contents) { MessageId = completion.Id, RawRepresentation = completion })
        {
            ResponseId = completion.Id,
            ModelId = completion.Model,
            CreatedAt = completion.CreatedAt,
            FinishReason = ToFinishReason(completion.FinishReason),
            Usage = usage,
            RawRepresentation = completion,
        };
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages,
        ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var client = ClientFor(options?.ModelId);
        var toolCalls = new SortedDictionary<int, ToolCallBuilder>();
        ChatRole? role = null;
        await foreach (var chunk in client.CompleteChatStreamingAsync(ToOpenAI(messages, options), ToOpenAI(options), cancellationToken).ConfigureAwait(false))
        {
            if (chunk.Role is { } r) role ??= ToRole(r);
            var update = new ChatResponseUpdate
            {
                Role = role ?? ChatRole.Assistant,
                ResponseId = chunk.CompletionId,
                MessageId = chunk.CompletionId,
                ModelId = chunk.Model,
                CreatedAt = chunk.CreatedAt,
                RawRepresentation = chunk,
            };
            foreach (var part in chunk.ContentUpdate)
            {
                if (ToContent(part) is { } content) update.Contents.Add(content);
            }

            if (!string.IsNullOrEmpty(chunk.RefusalUpdate)) update.Contents.Add(new ErrorContent(chunk.RefusalUpdate) { ErrorCode = "refusal" });
            foreach (var call in chunk.ToolCallUpdates)
            {
                if (!toolCalls.TryGetValue(call.Index, out var builder)) toolCalls[call.Index] = builder = new ToolCallBuilder();
                builder.Id ??= call.ToolCallId;
                builder.Name ??= call.FunctionName;
                if (call.FunctionArgumentsUpdate is { } args && !args.ToMemory().IsEmpty) builder.Arguments.Append(args.ToString());
            }

            if (chunk.Usage is { } usage) update.Contents.Add(new UsageContent(ToUsage(usage)));
            if (chunk.FinishReason is { } finish)
            {
                update.FinishReason = ToFinishReason(finish);
                foreach (var call in toolCalls.Values)
                {
                    update.Contents.Add(ToFunctionCall(call.Id ?? string.Empty, call.Name ?? string.Empty, call.Arguments.ToString()));
                }

                toolCalls.Clear();
            }

            yield return update;
        }
    }

    /// <inheritdoc/>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return _metadata;
        if (serviceType == typeof(OpenAIChat.ChatClient)) return ClientFor(null);
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
    }

    private OpenAIChat.ChatClient ClientFor(string? model) =>
        _clients.GetOrAdd(string.IsNullOrEmpty(model) ? _options.Model : model, m =>
        {
            var clientOptions = new OpenAIClientOptions { Endpoint = _options.Endpoint };
            if (_options.NetworkTimeout is { } timeout) clientOptions.NetworkTimeout = timeout;
            // The OpenAI package refuses an empty key; local servers accept any.
            return new OpenAIChat.ChatClient(m, new ApiKeyCredential(string.IsNullOrEmpty(_options.ApiKey) ? "unused" : _options.ApiKey), clientOptions);
        });

    // ---- ChatMessage -> OpenAI ----

    private static List<OpenAIChat.ChatMessage> ToOpenAI(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        var result = new List<OpenAIChat.ChatMessage>();
        if (!string.IsNullOrEmpty(options?.Instructions)) result.Add(new OpenAIChat.SystemChatMessage(options.Instructions));
        foreach (var message in messages)
        {
            if (message.Role == ChatRole.Tool)
            {
                foreach (var content in message.Contents.OfType<FunctionResultContent>())
                {
                    result.Add(new OpenAIChat.ToolChatMessage(content.CallId, ResultText(content.Result)));
                }

                continue;
            }

            var parts = new List<OpenAIChat.ChatMessageContentPart>();
            foreach (var content in message.Contents)
            {
                switch (content)
                {
                    case TextContent text:
                        parts.Add(OpenAIChat.ChatMessageContentPart.CreateTextPart(text.Text));
                        break;
                    case DataContent data when data.HasTopLevelMediaType("image"):
                        parts.Add(OpenAIChat.ChatMessageContentPart.CreateImagePart(BinaryData.FromBytes(data.Data), data.MediaType));
                        break;
                    case UriContent uri when uri.HasTopLevelMediaType("image"):
                        parts.Add(OpenAIChat.ChatMessageContentPart.CreateImagePart(uri.Uri));
                        break;
                }
            }

            if (message.Role == ChatRole.Assistant)
            {
                var calls = message.Contents.OfType<FunctionCallContent>()
                    .Select(c => OpenAIChat.ChatToolCall.CreateFunctionToolCall(c.CallId, c.Name, BinaryData.FromBytes(JsonSerializer.SerializeToUtf8Bytes(c.Arguments ?? new Dictionary<string, object?>()))))
                    .ToList();
                var assistant = parts.Count > 0 ? new OpenAIChat.AssistantChatMessage(parts) : new OpenAIChat.AssistantChatMessage(calls);
                if (parts.Count > 0)
                {
                    foreach (var call in calls) assistant.ToolCalls.Add(call);
                }

                if (message.AuthorName is { } author) assistant.ParticipantName = author;
                result.Add(assistant);
            }
            else if (message.Role == ChatRole.User)
            {
                var user = new OpenAIChat.UserChatMessage(parts);
                if (message.AuthorName is { } author) user.ParticipantName = author;
                result.Add(user);
            }
            else
            {
                // System, and roles OpenAI has no direct equivalent for.
                result.Add(new OpenAIChat.SystemChatMessage(parts));
            }
        }

        return result;
    }

    private static OpenAIChat.ChatCompletionOptions ToOpenAI(ChatOptions? options)
    {
        var result = new OpenAIChat.ChatCompletionOptions();
        if (options is null) return result;
        result.Temperature = options.Temperature;
        result.TopP = options.TopP;
        result.MaxOutputTokenCount = options.MaxOutputTokens;
        result.FrequencyPenalty = options.FrequencyPenalty;
        result.PresencePenalty = options.PresencePenalty;
        if (options.AllowMultipleToolCalls is { } parallel) result.AllowParallelToolCalls = parallel;
#pragma warning disable OPENAI001 // Seed is marked experimental by the OpenAI package; it is a plain request field.
        if (options.Seed is { } seed) result.Seed = seed;
#pragma warning restore OPENAI001
        foreach (var stop in options.StopSequences ?? []) result.StopSequences.Add(stop);
        foreach (var tool in options.Tools?.OfType<AIFunctionDeclaration>() ?? [])
        {
            result.Tools.Add(OpenAIChat.ChatTool.CreateFunctionTool(tool.Name, tool.Description, BinaryData.FromString(tool.JsonSchema.GetRawText())));
        }

        if (result.Tools.Count > 0)
        {
            result.ToolChoice = options.ToolMode switch
            {
                NoneChatToolMode => OpenAIChat.ChatToolChoice.CreateNoneChoice(),
                RequiredChatToolMode { RequiredFunctionName: { } name } => OpenAIChat.ChatToolChoice.CreateFunctionChoice(name),
                RequiredChatToolMode => OpenAIChat.ChatToolChoice.CreateRequiredChoice(),
                _ => OpenAIChat.ChatToolChoice.CreateAutoChoice(),
            };
        }

        result.ResponseFormat = options.ResponseFormat switch
        {
            ChatResponseFormatJson { Schema: { } schema } json => OpenAIChat.ChatResponseFormat.CreateJsonSchemaFormat(
                json.SchemaName ?? "response", BinaryData.FromString(schema.GetRawText()), json.SchemaDescription),
            ChatResponseFormatJson => OpenAIChat.ChatResponseFormat.CreateJsonObjectFormat(),
            ChatResponseFormatText => OpenAIChat.ChatResponseFormat.CreateTextFormat(),
            _ => null,
        };
        return result;
    }

    private static string ResultText(object? result) => result switch
    {
        null => string.Empty,
        string s => s,
        JsonElement e => e.GetRawText(),
        _ => JsonSerializer.Serialize(result, result.GetType()),
    };

    // ---- OpenAI -> Microsoft.Extensions.AI ----

    private static AIContent? ToContent(OpenAIChat.ChatMessageContentPart part) => part.Kind switch
    {
        OpenAIChat.ChatMessageContentPartKind.Text => new TextContent(part.Text) { RawRepresentation = part },
        OpenAIChat.ChatMessageContentPartKind.Refusal => new ErrorContent(part.Refusal) { ErrorCode = "refusal", RawRepresentation = part },
        _ => null,
    };

    private static FunctionCallContent ToFunctionCall(string callId, string name, string? arguments)
    {
        IDictionary<string, object?>? parsed = null;
        Exception? error = null;
        try
        {
            parsed = string.IsNullOrWhiteSpace(arguments) ? new Dictionary<string, object?>() : JsonSerializer.Deserialize<Dictionary<string, object?>>(arguments);
        }
        catch (JsonException e)
        {
            error = e;
        }

        return new FunctionCallContent(callId, name, parsed) { Exception = error };
    }

    private static UsageDetails ToUsage(OpenAIChat.ChatTokenUsage usage) => new()
    {
        InputTokenCount = usage.InputTokenCount,
        OutputTokenCount = usage.OutputTokenCount,
        TotalTokenCount = usage.TotalTokenCount,
    };

#pragma warning disable OPENAI001 // ChatMessageRole.Developer is marked experimental by the OpenAI package.
    private static ChatRole ToRole(OpenAIChat.ChatMessageRole role) => role switch
    {
        OpenAIChat.ChatMessageRole.System or OpenAIChat.ChatMessageRole.Developer => ChatRole.System,
        OpenAIChat.ChatMessageRole.User => ChatRole.User,
        OpenAIChat.ChatMessageRole.Tool or OpenAIChat.ChatMessageRole.Function => ChatRole.Tool,
        _ => ChatRole.Assistant,
    };
#pragma warning restore OPENAI001

    private static ChatFinishReason ToFinishReason(OpenAIChat.ChatFinishReason reason) => reason switch
    {
        OpenAIChat.ChatFinishReason.Stop => ChatFinishReason.Stop,
        OpenAIChat.ChatFinishReason.Length => ChatFinishReason.Length,
        OpenAIChat.ChatFinishReason.ContentFilter => ChatFinishReason.ContentFilter,
        OpenAIChat.ChatFinishReason.ToolCalls or OpenAIChat.ChatFinishReason.FunctionCall => ChatFinishReason.ToolCalls,
        _ => new ChatFinishReason(reason.ToString().ToLowerInvariant()),
    };

    private sealed class ToolCallBuilder
    {
        public string? Id { get; set; }

        public string? Name { get; set; }

        public StringBuilder Arguments { get; } = new();
    }
}
