// Reader mode on while the login screen waits for the card; every tag goes to the core.
package it.ciecompanion.app

import android.nfc.NfcAdapter
import android.nfc.Tag
import android.os.Bundle
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.activity.viewModels
import androidx.lifecycle.ViewModel
import androidx.lifecycle.ViewModelProvider
import it.ciecompanion.android.nfc.IsoDepTransport
import it.ciecompanion.core.CompanionClient

class MainActivity : ComponentActivity(), NfcAdapter.ReaderCallback {
    private val login: LoginViewModel by viewModels {
        object : ViewModelProvider.Factory {
            @Suppress("UNCHECKED_CAST")
            override fun <T : ViewModel> create(modelClass: Class<T>): T {
                val client = CompanionClient(
                    listOf(BuildConfig.SERVER_ORIGIN),
                    listOf(BuildConfig.SERVER_PIN),
                    KeystoreSecretStore(applicationContext),
                )
                return LoginViewModel(client, BuildConfig.SERVER_ORIGIN) as T
            }
        }
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContent { LoginScreen(login) }
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
        IsoDepTransport.of(tag)?.let(login::onTag)
    }
}
