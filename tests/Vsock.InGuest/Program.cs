using Vsock.InGuest;

return await InGuestProgram.RunAsync(args);
