// Gradle build of the Android shell: `core` packages the Rust core as an AAR (the .so per
// ABI from cargo-ndk, the generated Kotlin bindings, JNA), `app` is the thin app on top.
// Needs the Android SDK + NDK and cargo-ndk (see README.md); CI here compiles the
// platform-independent Kotlin with kotlinc instead (scripts/bindings-test.sh).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "cie-companion"
include(":core", ":app")
