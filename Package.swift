// swift-tools-version:6.2
// Sidobot: a Lua rule engine for WhatsApp messaging through the Sidobe API v1.
// The target layout follows docs/ARCHITECTURE.md: one target per concern, and the
// lower targets never import the upper ones.
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    // nonisolated async functions run on the caller's actor: lets an actor own
    // non-Sendable resources (a lua_State) and await their async methods.
    .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
]

let package = Package(
    name: "sidobot",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Sidobe", targets: ["Sidobe"]),
        .library(name: "SidobeSimulator", targets: ["SidobeSimulator"]),
        .library(name: "LuaSandbox", targets: ["LuaSandbox"]),
        .library(name: "SidobeTesting", targets: ["SidobeTesting"]),
        .executable(name: "sidobot", targets: ["sidobot"]),
    ],
    dependencies: [
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
    ],
    targets: [
        // The Lua 5.4 C API, from Debian's liblua5.4-dev.
        .systemLibrary(
            name: "CLua",
            pkgConfig: "lua5.4",
            providers: [.apt(["liblua5.4-dev"])]
        ),
        // C wrappers for Lua macros, the allocator, the hooks and the error trampolines.
        .target(name: "CLuaShims", dependencies: ["CLua"]),
        // Test support: Lua run in a stock state, to compare the sandbox's ports against.
        .target(name: "CLuaStock", dependencies: ["CLuaShims", "CLua"]),
        .target(name: "LuaSandbox", dependencies: ["CLuaShims"], swiftSettings: strict),
        .target(
            name: "Sidobe",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "SidobeSimulator",
            dependencies: [
                "Sidobe",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "SidobotEngine",
            dependencies: [
                "Sidobe",
                "LuaSandbox",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Collections", package: "swift-collections"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        // A configurable Sidobe test double, for tests, benchmarks and `sidobot test` (like HummingbirdTesting).
        .target(name: "SidobeTesting", dependencies: ["Sidobe"], swiftSettings: strict),
        // The rule tooling: `sidobot check` and `sidobot test`, over the engine (not part of the runtime).
        .target(
            name: "SidobotRuleTesting",
            dependencies: [
                "SidobotEngine", "Sidobe", "SidobeTesting", "LuaSandbox",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "SidobotServer",
            dependencies: [
                "SidobotEngine",
                "Sidobe",
                "LuaSandbox",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "sidobot",
            dependencies: [
                "Sidobe",
                "SidobeSimulator",
                "SidobotEngine",
                "SidobotServer",
                "SidobotRuleTesting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Benchmarks are commands, not tests: `swift run -c release sidobot-bench MODE` (docs/PERFORMANCE.md).
        .executableTarget(
            name: "sidobot-bench",
            dependencies: [
                "LuaSandbox", "CLuaShims", "Sidobe", "SidobeSimulator", "SidobeTesting", "SidobotEngine", "SidobotServer",
                .product(name: "Collections", package: "swift-collections"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Sources/SidobotBench",
            swiftSettings: strict
        ),
        .testTarget(name: "SidobeTests", dependencies: ["Sidobe", "SidobeSimulator"], swiftSettings: strict),
        .testTarget(
            name: "SidobeSimulatorTests",
            dependencies: [
                "Sidobe", "SidobeSimulator",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "LuaSandboxTests", dependencies: ["LuaSandbox", "CLuaShims", "CLuaStock"], swiftSettings: strict),
        .testTarget(
            name: "SidobotCLITests",
            dependencies: ["sidobot", "Sidobe", "SidobeSimulator"],
            swiftSettings: strict
        ),
        .testTarget(name: "SidobotEngineTests", dependencies: ["SidobotEngine", "SidobeTesting"], swiftSettings: strict),
        .testTarget(name: "SidobotRuleTestingTests", dependencies: ["SidobotRuleTesting", "SidobotEngine"], swiftSettings: strict),
        .testTarget(
            name: "SidobotPropertyTests",
            dependencies: [
                "Sidobe", "SidobotEngine", "LuaSandbox",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SidobotServerTests",
            dependencies: [
                "SidobotServer", "SidobotEngine", "Sidobe", "SidobeSimulator",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
