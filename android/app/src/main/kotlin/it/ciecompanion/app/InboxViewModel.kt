// The approvals inbox of the enrolled phone ("Richieste"): refresh on open and on request,
// approve with the computer's number, deny.
package it.ciecompanion.app

import androidx.lifecycle.ViewModel
import androidx.lifecycle.viewModelScope
import it.ciecompanion.android.approvals.ApprovalsModel
import it.ciecompanion.core.CompanionClient
import it.ciecompanion.core.DeviceSigner
import it.ciecompanion.core.Language
import it.ciecompanion.core.PendingApprovalInfo
import kotlinx.coroutines.launch

class InboxViewModel(client: CompanionClient, device: SavedDevice, signer: DeviceSigner, language: Language) : ViewModel() {
    val model = ApprovalsModel(client, device.origin, device.deviceId, signer, language)

    init {
        refresh()
    }

    fun refresh() {
        viewModelScope.launch { model.refresh() }
    }

    /** The user picked [number] among the request's three: the server checks it is the computer's. */
    fun approve(item: PendingApprovalInfo, number: UByte) {
        viewModelScope.launch { model.approve(item, number) }
    }

    fun deny(item: PendingApprovalInfo) {
        viewModelScope.launch { model.deny(item) }
    }
}
