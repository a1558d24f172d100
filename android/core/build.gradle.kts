// The core as an AAR: libcie_core.so per ABI (cargo-ndk, `dist` profile: size-optimised,
// LTO, debuginfo stripped), the Kotlin bindings generated from that library, JNA as @aar.
import org.gradle.api.tasks.Exec

plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "it.ciecompanion.android"
    compileSdk = 35
    defaultConfig {
        minSdk = 26 // IsoDep extended length and SecureElement-backed keystore APIs
        consumerProguardFiles("consumer-rules.pro")
    }
    sourceSets["main"].jniLibs.srcDir(layout.buildDirectory.dir("rust/jniLibs"))
    sourceSets["main"].java.srcDir(layout.buildDirectory.dir("rust/bindings"))
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin { jvmToolchain(17) }

val repo = rootDir.parentFile
val abis = listOf("arm64-v8a", "armeabi-v7a", "x86_64")

// cargo ndk builds every ABI into jniLibs/<abi>/libcie_core.so. Relative relocations packed
// in Android's format (loaded since API 23; minSdk is 26): ~4 % of the stripped library
// (docs/mobile.md, "Size of the core per ABI").
val cargoNdk by tasks.registering(Exec::class) {
    workingDir = repo
    for (triple in listOf("AARCH64_LINUX_ANDROID", "ARMV7_LINUX_ANDROIDEABI", "X86_64_LINUX_ANDROID")) {
        environment("CARGO_TARGET_${triple}_RUSTFLAGS", "-C link-arg=-Wl,--pack-dyn-relocs=android")
    }
    val out = layout.buildDirectory.dir("rust/jniLibs").get().asFile
    commandLine(
        listOf("cargo", "ndk") + abis.flatMap { listOf("-t", it) } +
            // The cdylib alone: built in one rustc run with the rlib and the staticlib that
            // core/Cargo.toml also names, the .so comes out 29 % larger (docs/mobile.md).
            // Without the core's own HTTPS client (`rustls-https`): the app sends requests
            // through PlatformHttps.
            listOf(
                "-o", out.path, "rustc", "-p", "cie-core", "--profile", "dist",
                "--no-default-features", "--features", "net", "--lib", "--crate-type", "cdylib",
            ),
    )
}

// Bindings from the built library (library mode reads its UNIFFI_META symbols).
val bindings by tasks.registering(Exec::class) {
    dependsOn(cargoNdk)
    workingDir = repo
    val lib = layout.buildDirectory.file("rust/jniLibs/arm64-v8a/libcie_core.so").get().asFile
    val out = layout.buildDirectory.dir("rust/bindings").get().asFile
    commandLine("cargo", "run", "-p", "uniffi-bindgen", "--", "generate", lib.path, "--language", "kotlin", "--out-dir", out.path)
}

tasks.named("preBuild") { dependsOn(bindings) }

dependencies {
    api("net.java.dev.jna:jna:5.15.0@aar")
    api("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.9.0")
}
