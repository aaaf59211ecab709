plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

// The model comes from the export step, never from git: `copyDeblurModel`
// copies <deblurExportDir>/tflite/<deblurModel>.tflite and its JSON contract
// into generated assets (assets/model/), and `copyDeblurGolden` copies
// <deblurExportDir>/golden/ (written by `python -m mobile_demo.golden`) into
// the instrumentation test's assets (assets/golden/).
val exportDir = rootProject.file(providers.gradleProperty("deblurExportDir").get())
val modelName = providers.gradleProperty("deblurModel").get()
val modelAssets = layout.buildDirectory.dir("generated/deblurModel")
val goldenAssets = layout.buildDirectory.dir("generated/deblurGolden")

val copyDeblurModel by tasks.registering(Copy::class) {
    description = "Copies the exported TFLite model and its contract into the app's assets."
    val tflite = File(exportDir, "tflite")
    doFirst {
        for (suffix in listOf(".tflite", ".json")) {
            val file = File(tflite, modelName + suffix)
            if (!file.isFile) {
                throw GradleException(
                    "$file not found: run `python -m export --model M.keras --out " +
                        "$exportDir --formats tflite` first (or pass -PdeblurExportDir=DIR)",
                )
            }
        }
    }
    from(tflite) {
        include("$modelName.tflite", "$modelName.json")
    }
    into(modelAssets.map { it.dir("model") })
}

val copyDeblurGolden by tasks.registering(Copy::class) {
    description = "Copies the golden images of `python -m mobile_demo.golden` into test assets."
    val golden = File(exportDir, "golden")
    doFirst {
        if (!File(golden, "golden.json").isFile) {
            throw GradleException(
                "$golden/golden.json not found: run `python -m mobile_demo.golden " +
                    "--model-dir $exportDir` first",
            )
        }
    }
    from(golden)
    into(goldenAssets.map { it.dir("golden") })
}

android {
    namespace = "com.kerasudd.deblur"
    compileSdk = 35

    defaultConfig {
        applicationId = "com.kerasudd.deblur"
        minSdk = 26
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        testInstrumentationRunner = "androidx.test.runner.AndroidJUnitRunner"
        buildConfigField("String", "MODEL_CONTRACT", "\"model/$modelName.json\"")
    }

    buildFeatures {
        buildConfig = true
    }

    sourceSets {
        getByName("main").assets.srcDir(modelAssets)
        getByName("androidTest").assets.srcDir(goldenAssets)
    }

    // The interpreter memory-maps the model: keep it uncompressed in the APK.
    androidResources {
        noCompress += "tflite"
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions {
        jvmTarget = "17"
    }
}

tasks.named("preBuild") {
    dependsOn(copyDeblurModel)
}
tasks.configureEach {
    if (name.startsWith("merge") && name.endsWith("AndroidTestAssets")) {
        dependsOn(copyDeblurGolden)
    }
}

dependencies {
    implementation("com.google.ai.edge.litert:litert:1.4.0")
    implementation("com.google.ai.edge.litert:litert-gpu:1.4.0")
    implementation("com.google.ai.edge.litert:litert-gpu-api:1.4.0")
    implementation("androidx.activity:activity-ktx:1.9.3")
    implementation("androidx.lifecycle:lifecycle-runtime-ktx:2.8.7")
    implementation("androidx.exifinterface:exifinterface:1.3.7")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.9.0")

    androidTestImplementation("androidx.test:runner:1.6.2")
    androidTestImplementation("androidx.test.ext:junit:1.2.1")
}
