enum _LuaSandboxPlaceholder {}
