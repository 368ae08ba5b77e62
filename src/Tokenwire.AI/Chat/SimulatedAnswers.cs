namespace Tokenwire.AI.Chat;

/// <summary>
/// The small built-in corpus of <see cref="SimulatedTextStyle.Sentences"/>: a few topics, each with the words of a prompt
/// that select it and readable sentences to answer with. An answer opens with the topic's first sentence, then takes
/// the others (in an order seeded by the prompt, unless the topic tells a story), whole sentences only, while they fit
/// the token budget.
/// </summary>
internal static class SimulatedAnswers
{
    /// <summary>A topic; a story, a recipe or a poem keeps its order, other sentences are shuffled by the prompt.</summary>
    private sealed record Topic(string[] Keywords, string[] Sentences, bool Ordered = false);

    // Keywords match a prompt word exactly, or as its beginning when they have four letters or more ("stream" matches
    // "streaming"). The first topic with the most matches wins; a prompt that matches none gets the last topic.
    private static readonly Topic[] Topics =
    [
        new(["joke", "jokes", "funny", "laugh", "pun", "humor", "humour"],
        [
            "Here is one from the server room.",
            "Why don't skeletons fight each other? They don't have the guts.",
            "A WebSocket walks into a bar and the bartender says: we don't get many persistent customers here.",
            "I told my computer I needed a break, and it said: no problem, I'll go to sleep.",
            "There are ten kinds of people in the world: those who understand binary and those who don't.",
            "Why did the developer go broke? Because he used up all his cache.",
            "A token asked the channel for directions, and the channel said: just follow the serials.",
            "The cloud is just someone else's computer, and it has opinions about your timeouts.",
            "I would tell you a UDP joke, but you might not get it.",
        ]),
        new(["story", "stories", "tale", "once", "fairy", "adventure", "bedtime"],
        [
            "Once upon a time, a small server lived on a quiet loopback address.",
            "Every morning it opened its port and waited for someone to say hello.",
            "One day an agent arrived with a question that was far too big to answer at once.",
            "So the server cut the answer into tokens and sent them out one by one, like lanterns on a river.",
            "A browser far away caught every lantern and read them in order, never missing one.",
            "When the browser's tab was closed by accident, it came back and asked what it had missed.",
            "The server remembered everything, and the story continued exactly where it had stopped.",
            "From then on, nobody in that land was afraid of a flaky network again.",
        ], Ordered: true),
        new(["reload", "refresh", "history", "rewind", "hydrate", "hydration", "catch", "resume", "reconnect", "offline", "missed"],
        [
            "Nothing is lost when a page reloads.",
            "The page attaches to the channel first, then asks for the persisted history up to the attach point with untilAttach.",
            "Finished answers come back from that history, and the answer still streaming comes from the in-progress endpoint.",
            "Live tokens that arrive while the page catches up are buffered and applied once, in order.",
            "A rewind of two minutes or a hundred messages is the quick way to catch up when history is not needed.",
            "If the connection drops, the client resumes with its connection key and gets every message it missed exactly once.",
            "Channel serials tell the server exactly where each subscriber left off.",
            "Try it: reload this page while an answer is streaming and watch it pick up where it was.",
        ]),
        new(["redis", "scale", "scaling", "node", "nodes", "cluster", "deploy", "production", "load", "balancer"],
        [
            "One Tokenwire process serves a lot of traffic on its own.",
            "When you need more, run several nodes behind a load balancer and give them the same Redis.",
            "Each channel becomes a Redis stream, so every node sees one order for its messages.",
            "A client whose node dies reconnects to another one and resumes without losing a token.",
            "While Redis is unreachable, publishes are refused with an error instead of being lost silently.",
            "Keys for one channel share a hash tag, so Redis Cluster keeps a channel on one shard.",
            "Rate limits, retention and keys all come from configuration, the same on every node.",
        ]),
        new(["stream", "streaming", "token", "tokens", "realtime", "websocket", "tokenwire", "ably", "channel", "publish", "subscribe", "message", "latency"],
        [
            "Streaming an answer token by token is what this server was built for.",
            "The agent publishes every token as its own message and never waits for one publish before sending the next.",
            "Each message carries a responseId header, so several answers can stream on one channel at once.",
            "Subscribers rebuild each answer in order, and a start and a stop message mark its edges.",
            "If a publish fails, the agent sends the full text once more in a single response-complete message.",
            "The server encodes each message once per wire format and shares the bytes with every subscriber.",
            "A slow subscriber is disconnected and resumes later, so it never holds up everyone else.",
            "Because it speaks Ably's protocol, the official ably-js client works by changing only its endpoint.",
        ]),
        new(["weather", "rain", "raining", "sunny", "snow", "wind", "forecast", "cold", "warm", "temperature"],
        [
            "I can't look outside, because I'm a simulated model running entirely offline.",
            "If I had to guess, I'd say there is a fair chance of sunshine with a light breeze.",
            "Bring an umbrella anyway, since forecasts are only probabilities dressed up as promises.",
            "The nice thing about streaming is that you see the forecast form word by word.",
            "A real model behind this page could call a weather service and stream the answer the same way.",
            "Until then, the best forecast is the window next to you.",
        ]),
        new(["recipe", "cook", "cooking", "food", "dinner", "lunch", "breakfast", "pancake", "pancakes", "bake", "soup", "hungry"],
        [
            "Here is a simple recipe for pancakes.",
            "Whisk one cup of flour with a spoonful of sugar, a pinch of salt and two teaspoons of baking powder.",
            "In another bowl, beat one egg into a cup of milk and two spoonfuls of melted butter.",
            "Pour the wet ingredients into the dry ones and stir until just combined, with a few lumps left.",
            "Heat a lightly oiled pan over medium heat and pour a small ladle of batter for each pancake.",
            "Flip them when bubbles appear on the surface, then cook the other side until golden.",
            "Serve them warm with fruit, honey or maple syrup.",
        ], Ordered: true),
        new(["poem", "poems", "haiku", "poetry", "verse", "rhyme", "sonnet"],
        [
            "Here is a short poem about a stream of tokens.",
            "Word after word they leave the wire, each one small and bright.",
            "They cross the quiet network like sparks across the night.",
            "No token waits for the one before, yet none arrives out of line.",
            "The reader sees the sentence grow, one fragment at a time.",
            "And when the final word has come, the stop sign ends the rhyme.",
        ], Ordered: true),
        new(["hello", "hi", "hey", "greetings", "morning", "afternoon", "evening", "thanks", "thank", "who", "you"],
        [
            "Hello, and welcome to the Tokenwire demo.",
            "I'm a simulated model: I answer from a small built-in set of sentences, chosen by the words of your prompt.",
            "Every word you see arrives as its own message on a realtime channel.",
            "Open this page in a second tab and both will show the same stream.",
            "Ask me for a joke, a story, a recipe or a poem, or ask how reloading or scaling works.",
            "Reload the page at any time and the conversation comes back.",
        ]),
        new([],
        [
            "That's a good question, and a real model would have a lot to say about it.",
            "I'm a simulated model, so I answer offline from a small set of sentences chosen by your prompt.",
            "What you are watching is the point of this demo: each word arrives as its own realtime message.",
            "The agent that answers runs inside the server and publishes every token without waiting for the last one.",
            "A browser watching the conversation holds a token that lets it subscribe but never publish.",
            "Configure an OpenAI-compatible endpoint and the same page streams a real model's answers.",
            "Meanwhile, try asking for a joke, a story, a poem or a recipe.",
        ]),
    ];

    /// <summary>The answer to <paramref name="prompt"/>: whole sentences of its topic, at most <paramref name="maxTokens"/> tokens (at least one sentence).</summary>
    public static string Answer(string prompt, uint seed, int maxTokens)
    {
        var topic = Choose(prompt);
        // The opening sentence, then the others shuffled (Fisher-Yates) by a PRNG whose sequence never changes.
        var order = new List<string>(topic.Sentences);
        var random = new Mulberry32(seed);
        for (var i = order.Count - 1; i > 1 && !topic.Ordered; i--)
        {
            var j = 1 + (int)(random.Next() % (uint)i);
            (order[i], order[j]) = (order[j], order[i]);
        }

        var text = new System.Text.StringBuilder();
        for (var i = 0; i < order.Count; i++)
        {
            // Three sentences to a paragraph.
            var separator = i == 0 ? "" : i % 3 == 0 ? "\n\n" : " ";
            var candidate = text.ToString() + separator + order[i];
            if (i > 0 && SimulatedChatClient.Tokenize(candidate).Count > maxTokens) break;
            text.Clear().Append(candidate);
        }

        return text.ToString();
    }

    private static Topic Choose(string prompt)
    {
        var words = prompt.ToLowerInvariant().Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)
            .Select(w => w.Trim('.', ',', '!', '?', ';', ':', '"', '\'', '(', ')'))
            .Where(w => w.Length > 0)
            .ToList();
        var best = Topics[^1];
        var bestScore = 0;
        foreach (var topic in Topics)
        {
            var score = words.Count(w => topic.Keywords.Any(k => w == k || (k.Length >= 4 && w.StartsWith(k, StringComparison.Ordinal))));
            if (score > bestScore)
            {
                best = topic;
                bestScore = score;
            }
        }

        return best;
    }
}

/// <summary>mulberry32: a tiny PRNG whose sequence for a seed is the same on every runtime (System.Random promises no such thing).</summary>
internal struct Mulberry32(uint seed)
{
    private uint _state = seed;

    public uint Next()
    {
        _state += 0x6D2B79F5;
        var t = _state;
        t = (t ^ (t >> 15)) * (t | 1);
        t ^= t + ((t ^ (t >> 7)) * (t | 61));
        return t ^ (t >> 14);
    }
}
