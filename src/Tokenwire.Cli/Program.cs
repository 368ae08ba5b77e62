using Tokenwire.Cli;

return await CommandLine.RunAsync(args).ConfigureAwait(false);
