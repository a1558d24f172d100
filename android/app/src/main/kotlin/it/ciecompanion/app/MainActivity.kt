// The app: four tabs (log in here with the CIE, log in on a computer, approval requests,
// one-time codes) and the enrolment of this phone. Reader mode is on while the app is in
// front; every tag goes to the screen waiting for a card.
package it.ciecompanion.app

import android.nfc.NfcAdapter
import android.nfc.Tag
import android.os.Build
import android.os.Bundle
import androidx.activity.compose.setContent
import androidx.activity.viewModels
import androidx.biometric.BiometricManager.Authenticators.BIOMETRIC_STRONG
import androidx.biometric.BiometricManager.Authenticators.DEVICE_CREDENTIAL
import androidx.biometric.BiometricPrompt
import androidx.compose.foundation.layout.Box
import androidx.compose.foundation.layout.padding
import androidx.compose.material.icons.Icons
import androidx.compose.material.icons.filled.Lock
import androidx.compose.material.icons.filled.Notifications
import androidx.compose.material.icons.filled.Person
import androidx.compose.material.icons.filled.Search
import androidx.compose.material3.Icon
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.NavigationBar
import androidx.compose.material3.NavigationBarItem
import androidx.compose.material3.Scaffold
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.CompositionLocalProvider
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.stringResource
import androidx.core.content.ContextCompat
import androidx.fragment.app.FragmentActivity
import androidx.lifecycle.ViewModel
import androidx.lifecycle.ViewModelProvider
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import androidx.lifecycle.viewmodel.compose.viewModel
import it.ciecompanion.android.card.PinChangeKind
import it.ciecompanion.android.net.PlatformHttps
import it.ciecompanion.android.nfc.IsoDepTransport
import it.ciecompanion.android.otp.OtpModel
import it.ciecompanion.core.CompanionClient
import it.ciecompanion.core.Language
import it.ciecompanion.core.ServerKeyCheck
import it.ciecompanion.core.languageForLocale
import kotlin.coroutines.resume
import kotlinx.coroutines.suspendCancellableCoroutine

private enum class Tab(val label: Int) { LOGIN(R.string.tab_login), COMPUTER(R.string.tab_computer), REQUESTS(R.string.tab_requests), CODES(R.string.tab_codes) }

/** A factory for a view model built from the activity's objects. */
private inline fun <reified VM : ViewModel> factory(crossinline make: () -> VM) = object : ViewModelProvider.Factory {
    @Suppress("UNCHECKED_CAST")
    override fun <T : ViewModel> create(modelClass: Class<T>): T = make() as T
}

/** The codes screen's model outlives rotations. */
class OtpViewModel(store: KeystoreSecretStore, language: Language) : ViewModel() {
    val model = OtpModel(store, language)
}

class MainActivity : FragmentActivity(), NfcAdapter.ReaderCallback {
    private val store by lazy { KeystoreSecretStore(applicationContext) }
    private val client by lazy {
        // Requests go through the platform's HTTPS (PlatformHttps), its TLS trusting only the
        // key the core's check accepts.
        val keys = ServerKeyCheck(listOf(BuildConfig.SERVER_PIN))
        CompanionClient.withHttpsTransport(listOf(BuildConfig.SERVER_ORIGIN), keys, store, PlatformHttps(keys))
    }
    private val signer by lazy { KeystoreDeviceSigner(applicationContext, ::authenticate) }
    private val devices by lazy { EnrolledDevices(applicationContext) }
    // The core's messages in the language of the app's own texts (values-it or values).
    private val language by lazy { languageForLocale(resources.configuration.locales[0].toLanguageTag()) }
    private val cards = CardTargets()
    private val deviceName = "${Build.MANUFACTURER} ${Build.MODEL}"

    private val login: LoginViewModel by viewModels { factory { LoginViewModel(client, BuildConfig.SERVER_ORIGIN, language) } }
    private val desktop: DesktopViewModel by viewModels { factory { DesktopViewModel(client, deviceName, devices, signer, language) } }
    private val enrol: EnrolViewModel by viewModels {
        factory { EnrolViewModel(client, BuildConfig.SERVER_ORIGIN, signer, deviceName, devices, language) }
    }
    private val otp: OtpViewModel by viewModels { factory { OtpViewModel(store, language) } }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContent {
            MaterialTheme {
                CompositionLocalProvider(LocalCardTargets provides cards) {
                    var tab by rememberSaveable { mutableStateOf(Tab.LOGIN) }
                    // "Sblocca carta" / "Cambia PIN" over the login tab; a new run each time.
                    var pinChange by rememberSaveable { mutableStateOf<PinChangeKind?>(null) }
                    var pinChangeRun by rememberSaveable { mutableStateOf(0) }
                    Scaffold(bottomBar = {
                        NavigationBar {
                            Tab.entries.forEach { t ->
                                NavigationBarItem(
                                    selected = tab == t,
                                    onClick = { tab = t },
                                    icon = { Icon(t.icon(), contentDescription = null) },
                                    label = { Text(stringResource(t.label)) },
                                )
                            }
                        }
                    }) { padding ->
                        Box(Modifier.padding(padding)) {
                            when (tab) {
                                Tab.LOGIN -> when (val kind = pinChange) {
                                    null -> LoginScreen(login) { pinChange = it }
                                    else -> {
                                        val vm: PinChangeViewModel = viewModel(
                                            key = "pin-change-$kind-$pinChangeRun",
                                            factory = factory { PinChangeViewModel(kind, language, store) },
                                        )
                                        PinChangeScreen(vm) {
                                            pinChange = null
                                            pinChangeRun += 1
                                        }
                                    }
                                }
                                Tab.COMPUTER -> DesktopScreen(desktop, client)
                                Tab.REQUESTS -> Requests()
                                Tab.CODES -> OtpScreen(otp.model)
                            }
                        }
                    }
                }
            }
        }
    }

    @Composable
    private fun Requests() {
        val device by devices.current.collectAsStateWithLifecycle()
        val d = device
        if (d == null) {
            EnrolScreen(enrol)
        } else {
            // One inbox per enrolment (a new key after "forget" gets a new one).
            val inbox: InboxViewModel = viewModel(key = d.deviceId, factory = factory { InboxViewModel(client, d, signer, language) })
            InboxScreen(inbox, client, d.holder) {
                signer.delete()
                devices.forget()
                enrol.back()
            }
        }
    }

    private fun Tab.icon() = when (this) {
        Tab.LOGIN -> Icons.Filled.Person
        Tab.COMPUTER -> Icons.Filled.Search
        Tab.REQUESTS -> Icons.Filled.Notifications
        Tab.CODES -> Icons.Filled.Lock
    }

    /** The system prompt (fingerprint, face or screen lock) before the device key signs. */
    private suspend fun authenticate(): Boolean = suspendCancellableCoroutine { done ->
        runOnUiThread {
            val prompt = BiometricPrompt(
                this,
                ContextCompat.getMainExecutor(this),
                object : BiometricPrompt.AuthenticationCallback() {
                    override fun onAuthenticationSucceeded(result: BiometricPrompt.AuthenticationResult) {
                        if (done.isActive) done.resume(true)
                    }

                    override fun onAuthenticationError(errorCode: Int, errString: CharSequence) {
                        if (done.isActive) done.resume(false)
                    }
                },
            )
            prompt.authenticate(
                BiometricPrompt.PromptInfo.Builder()
                    .setTitle(getString(R.string.unlock_key_title))
                    .setSubtitle(getString(R.string.unlock_key_subtitle))
                    .setAllowedAuthenticators(BIOMETRIC_STRONG or DEVICE_CREDENTIAL)
                    .build(),
            )
        }
    }

    override fun onResume() {
        super.onResume()
        // NFC-A and -B (CIE chips answer on either), no NDEF probing (it sends APDUs of its
        // own to the card), no platform sound (the screen says what happens).
        NfcAdapter.getDefaultAdapter(this)?.enableReaderMode(
            this,
            this,
            NfcAdapter.FLAG_READER_NFC_A or NfcAdapter.FLAG_READER_NFC_B or
                NfcAdapter.FLAG_READER_SKIP_NDEF_CHECK or NfcAdapter.FLAG_READER_NO_PLATFORM_SOUNDS,
            null,
        )
    }

    override fun onPause() {
        NfcAdapter.getDefaultAdapter(this)?.disableReaderMode(this)
        super.onPause()
    }

    override fun onTagDiscovered(tag: Tag) {
        IsoDepTransport.of(tag)?.let(cards::deliver)
    }
}
