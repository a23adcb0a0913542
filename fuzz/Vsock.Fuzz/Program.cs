using SharpFuzz;
using Vsock.Fuzz;

// Usage (scripts/fuzz.sh runs the first form under afl-fuzz, on a build instrumented with sharpfuzz):
//   Vsock.Fuzz TARGET               one input per AFL++ execution, read from stdin (SharpFuzz's in-process loop)
//   Vsock.Fuzz TARGET PATH...       replay files (or every file of a folder), print each outcome; exit 1 on a violation
//   Vsock.Fuzz seeds DIR            write every target's seed corpus to DIR/TARGET/
const string usage = "usage: Vsock.Fuzz TARGET [PATH...] | seeds DIR   (targets: {0})";
var names = string.Join(", ", FuzzTargets.All.Select(t => t.Name));

if (args.Length == 2 && args[0] == "seeds")
{
    foreach (var t in FuzzTargets.All)
    {
        var dir = Path.Combine(args[1], t.Name);
        Directory.CreateDirectory(dir);
        foreach (var (name, input) in t.Seeds())
            File.WriteAllBytes(Path.Combine(dir, name), input);
    }
    return 0;
}

var target = args.Length > 0 ? FuzzTargets.Find(args[0]) : null;
if (target is null)
{
    Console.Error.WriteLine(usage, names);
    return 2;
}

if (args.Length > 1)
{
    var files = args.Skip(1).SelectMany(p => Directory.Exists(p) ? Directory.GetFiles(p).Order() : (IEnumerable<string>)[p]);
    foreach (var file in files)
    {
        try
        {
            Console.WriteLine($"{file}: {target.Run(File.ReadAllBytes(file))}");
        }
        catch (Exception e)
        {
            Console.WriteLine($"{file}: {e}");
            return 1;
        }
    }
    return 0;
}

// AFL++ caps inputs at 1 MiB by default; one buffer serves every execution.
var buffer = new byte[1 << 20];
Fuzzer.Run(stream =>
{
    var length = 0;
    int n;
    while (length < buffer.Length && (n = stream.Read(buffer, length, buffer.Length - length)) > 0)
        length += n;
    target.Run(buffer.AsSpan(0, length));
});
return 0;
