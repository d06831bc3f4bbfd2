// Stripe's Payment Element (https://docs.stripe.com/payments/payment-element), for funding a milestone
// (a PaymentIntent: confirmPayment) or saving a card for weekly charges (data-mode="setup", a
// SetupIntent: confirmSetup). The intent already exists (made by the server, once); the browser only
// confirms it. Stripe then returns the browser to data-return, and the webhook records the outcome.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    const form = document.getElementById("payment-form");
    const stripe = window.Stripe(form.dataset.key);
    const elements = stripe.elements({ clientSecret: form.dataset.secret });
    elements.create("payment").mount("#payment-element");
    const error = document.getElementById("payment-error");
    const button = document.getElementById("pay");
    form.addEventListener("submit", async function (submitted) {
      submitted.preventDefault();
      button.disabled = true;
      error.textContent = "";
      const confirm = form.dataset.mode === "setup" ? stripe.confirmSetup : stripe.confirmPayment;
      const result = await confirm({ elements: elements, confirmParams: { return_url: form.dataset.return } });
      if (result && result.error) {
        error.textContent = result.error.message; // a declined card: nothing was charged, try another
        button.disabled = false;
      }
    });
  });
})();
